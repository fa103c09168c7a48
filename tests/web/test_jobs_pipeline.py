"""Whole-cell pipeline with XCT and Compton branches joined by a correlate stage.

Stand-in engine functions record what they receive, so the test checks the wiring: chains per
dataset, the join stage getting the segmented XCT plus the Compton maps ordered by region.
There is one launch path (chains ending in an idempotent final step, no chord), so it is the
same with or without a result backend.
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from jobs import engine_registry as registry
from jobs import reports
from jobs.models import AnalysisJob, JobStatus, Result

from analysis_engine.errors import EngineInputError

POROSITY = [0.333, 0.232, 0.096]
SEEN: dict[str, list] = {}


def run_segment(input_spec, output_path, *, regions: int = 3, progress=None):
    SEEN.setdefault("segment", []).append(input_spec)
    with h5py.File(output_path, "w") as f:
        f["pore_mask"] = np.zeros((6, 4, 4), np.uint8)
        f["porosity_by_region"] = np.array(POROSITY)
        f["lateral_porosity"] = np.stack([np.full((4, 4), p) for p in POROSITY])
    return {"porosity": float(np.mean(POROSITY)), "porosity_by_region": POROSITY}


def run_transport_table(volume_spec, output_path, *, thickness_axis: int = 0, progress=None):
    SEEN.setdefault("transport_table", []).append(volume_spec)
    rows = []
    for region, (tau_xy, tau_yz) in enumerate(((8.7, 1.1), (10.5, 2.3), (11.2, 2.8)), start=1):
        eps = POROSITY[region - 1]
        for direction, tau in (("through-plane", tau_yz), ("in-plane", tau_xy)):
            rows.append(
                {
                    "region": region,
                    "direction": direction,
                    "porosity": eps,
                    "tau": tau,
                    "d_directional_cm2_s": 1.39e-7 * eps / tau,  # Eq. 4
                }
            )
    with h5py.File(output_path, "w") as f:
        f["tau_through_plane"] = [r["tau"] for r in rows if r["direction"] == "through-plane"]
    return {"rows": rows, "regions": 3}


def run_correlate(xct_path, compton_paths, output_path, *, progress=None):
    lis = []
    for path in compton_paths:
        with h5py.File(path, "r") as f:
            lis.append(float(np.nanmean(f["li_stoichiometry"][()])))
    SEEN.setdefault("correlate", []).append((xct_path, list(compton_paths), lis))
    with h5py.File(output_path, "w") as f:
        for k, li in enumerate(lis, start=1):
            f[f"region_{k}/porosity"] = np.full((4, 5), POROSITY[k - 1])
            f[f"region_{k}/li_stoichiometry"] = np.full((4, 5), li)
            f[f"region_{k}/pairs"] = np.array([[POROSITY[k - 1], li]] * 3)
            footprint = np.zeros((4, 5), np.uint8)
            footprint[1:, : k + 2] = 1  # a different footprint per region
            f[f"region_{k}/cathode_mask"] = footprint
    gradient = [100 * (b - a) / a for a, b in zip(lis, lis[1:], strict=False)]
    return {"regions": [{"region": k + 1, "li_mean": v} for k, v in enumerate(lis)],
            "li_gradient_pct": gradient,
            "figures": {"region_1": {"data": [{"type": "scatter"}], "layout": {}}}}  # fmt: skip


@pytest.fixture
def xct_engine(monkeypatch, fake_engine):
    stand_ins = {
        "segment": run_segment,
        "transport_table": run_transport_table,
        "correlate": run_correlate,
    }
    for name, function in stand_ins.items():
        kind = registry.JOB_KINDS[name]
        monkeypatch.setitem(
            registry.JOB_KINDS, name, registry.JobKind(**{**kind.__dict__, "function": function})
        )
    SEEN.clear()


def test_pipeline_joins_xct_and_compton_per_charge_state(
    spectra_dataset,
    xct_engine,
    project,
    analyst,
    factories,
    api_as,
    django_capture_on_commit_callbacks,
):
    cell = factories.make_cell(project, name="DIT cell")
    state = factories.make_charge_state(project, cell=cell, state="discharged")
    # uploaded out of order: region 3 first
    for region, li in ((3, 0.61), (1, 0.76), (2, 0.73)):
        spectra_dataset(factories, project, li=li, cell=cell, charge_state=state, region=region)
    content = b"\x89HDF\r\n\x1a\n fake reconstruction"
    factories.make_dataset(
        project,
        content=content,
        kind="xct_reconstruction",
        sha256=hashlib.sha256(content).hexdigest(),
        cell=cell,
        charge_state=state,
    )

    with django_capture_on_commit_callbacks(execute=True):
        r = api_as(analyst).post(
            "/api/v1/jobs/", {"kind": "pipeline", "cell": cell.pk}, format="json"
        )
    assert r.status_code == 202, r.content
    parent = AnalysisJob.objects.get(pk=r.json()["id"])
    kinds = sorted(parent.children.values_list("kind", flat=True))
    # per region a compton stage, then after correlate one inside its cathode footprint
    assert kinds == ["compton"] * 6 + ["correlate", "segment", "transport_table"]
    assert parent.status == JobStatus.SUCCEEDED, parent.error
    assert all(c.status == "succeeded" for c in parent.children.all())

    # the whole segmentation file is handed over (pores + electrode mask: the engine crops the
    # transport sub-volumes to the electrode)
    assert SEEN["transport_table"][0].endswith("segmentation.h5")
    xct_path, compton_paths, lis = SEEN["correlate"][0]
    assert xct_path.endswith("segmentation.h5")
    assert lis == pytest.approx([0.76, 0.73, 0.61])  # region order, not upload order
    correlate = parent.children.get(kind="correlate")
    assert correlate.upstream.count() == 4
    corr_result = Result.objects.get(job=correlate)
    assert corr_result.summary["li_gradient_pct"] == pytest.approx([-3.95, -16.44], abs=0.01)
    assert "figures" not in corr_result.summary
    assert {"li_maps", "overlay", "li_vs_porosity", "engine_region_1"} <= set(corr_result.figures)

    # the masked stages: same spectra as the region's compton stage, the correlate result's
    # footprint of that region as the mask, started only after correlate finished
    masked = parent.children.filter(kind="compton", upstream=correlate).order_by("region")
    assert [job.region for job in masked] == [1, 2, 3]
    for job in masked:
        assert job.parameters["mask"] == {
            "result": corr_result.pk,
            "path": f"/region_{job.region}/cathode_mask",
        }
        assert job.started_at >= correlate.finished_at
        unmasked = parent.children.get(kind="compton", region=job.region, upstream=None)
        assert list(job.inputs.all()) == list(unmasked.inputs.all())
        result = Result.objects.get(job=job)
        assert result.provenance["inputs"] == [
            {**entry, "type": "dataset"} for entry in result.provenance["inputs"]
        ]  # the correlate result feeds the mask option, not an input slot
        li_map = reports.read_result_array(result.output_file.path, "li_stoichiometry")
        assert np.isfinite(li_map).sum() == 3 * (job.region + 2)  # the region's footprint
    rows = {row["region"]: row for row in reports.build_cell_report(cell)["tables"]["li_by_region"]}
    for region, li in ((1, 0.76), (2, 0.73), (3, 0.61)):
        assert rows[region]["stage"] == "masked"
        assert rows[region]["li"] == pytest.approx(li)
        assert rows[region]["li_unmasked"] == pytest.approx(li)
        assert rows[region]["result"] == Result.objects.get(job=masked[region - 1]).pk

    porosity = reports.build_cell_report(cell)["tables"]["porosity"]
    by_region = {row["region"]: row for row in porosity}
    assert by_region[1]["porosity_vol_pct"] == pytest.approx(33.3)
    assert by_region[1]["tau_through_plane"] == 1.1 and by_region[1]["tau_in_plane"] == 8.7
    # Eq. 4 with D_e = 1.39e-7 cm2/s reproduces Table 1: 42.1 and 5.3 (1e-9 cm2/s)
    assert by_region[1]["d_through_plane_1e-9_cm2_s"] == pytest.approx(42.1, abs=0.05)
    assert by_region[1]["d_in_plane_1e-9_cm2_s"] == pytest.approx(5.3, abs=0.05)


def test_correlate_submitted_by_hand_takes_results_in_any_order(
    spectra_dataset, xct_engine, project, analyst, factories, django_capture_on_commit_callbacks
):
    from jobs import dispatch, execution

    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="charged")
    results = []
    for region, li in ((2, 0.03), (1, 0.10)):
        ds = spectra_dataset(
            factories, project, li=li, cell=cell, charge_state=state, region=region
        )
        job, _ = dispatch.submit_job(project=project, user=analyst, kind="compton", datasets=[ds])
        execution.execute_job(job.pk)
        results.append(Result.objects.get(job=job))
    content = b"\x89HDF\r\n\x1a\n another fake reconstruction"
    xct = factories.make_dataset(
        project,
        content=content,
        kind="xct_reconstruction",
        sha256=hashlib.sha256(content).hexdigest(),
    )
    seg, _ = dispatch.submit_job(project=project, user=analyst, kind="segment", datasets=[xct])
    assert execution.execute_job(seg.pk) == JobStatus.SUCCEEDED
    seg_result = Result.objects.get(job=seg)
    with pytest.raises(EngineInputError, match="needs xct"):
        dispatch.submit_job(project=project, user=analyst, kind="correlate", input_results=results)
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="correlate",
        input_results=[results[0], seg_result, results[1]],
    )
    assert execution.execute_job(job.pk) == JobStatus.SUCCEEDED
    _, _, lis = SEEN["correlate"][-1]
    assert lis == pytest.approx([0.10, 0.03])


def test_masked_stages_wait_for_correlate_and_take_its_footprint(
    spectra_dataset, xct_engine, project, analyst, factories
):
    """The stage graph: events -> compton chains per region, correlate joining the segmented
    XCT and the compton stages, then per region a masked compton stage whose upstream is the
    events stage (or the spectra dataset) and correlate; claimed only after correlate."""
    from jobs import planning

    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="discharged")
    spectra_dataset(factories, project, li=0.76, cell=cell, charge_state=state, region=1)
    content = b"events region 2"
    factories.make_dataset(
        project, content=content, kind="xcs_events", sha256=hashlib.sha256(content).hexdigest(),
        cell=cell, charge_state=state, region=2,
    )  # fmt: skip
    content = b"\x89HDF\r\n\x1a\n xct"
    factories.make_dataset(
        project, content=content, kind="xct_reconstruction",
        sha256=hashlib.sha256(content).hexdigest(), cell=cell, charge_state=state,
    )  # fmt: skip
    parent, created, chains = planning.record_pipeline(
        project=project, user=analyst, cell=cell, parameters={"compton": {"scale": 0.5}}
    )
    assert created
    children = {c.pk: c for c in parent.children.all()}
    correlate = next(c for c in children.values() if c.kind == "correlate")
    masked = sorted(
        (c for c in children.values() if c.kind == "compton" and not c.celery_task_id),
        key=lambda c: c.region,
    )
    events = next(c for c in children.values() if c.kind == "events")
    assert [c.region for c in masked] == [1, 2]
    assert set(masked[0].upstream.all()) == {correlate}  # spectra uploaded: a dataset input
    assert masked[0].inputs.get().region == 1
    assert set(masked[1].upstream.all()) == {events, correlate}
    assert not masked[1].inputs.exists()
    for job in masked:
        assert job.parameters["scale"] == 0.5  # the region's compton options
        assert job.parameters["mask"] == {
            planning.UPSTREAM_KEY: "correlate",
            "path": f"/region_{job.region}/cathode_mask",
        }
        assert "cathode footprint" in job.label
    assert len({c.job_key for c in children.values()}) == len(children)

    # nothing is claimed while the chains run; then correlate alone
    assert planning.claim_ready_joins(parent.pk) == []
    chained = [children[pk] for ids in chains for pk in ids]
    for job in chained:
        AnalysisJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert planning.claim_ready_joins(parent.pk) == [
        (correlate.pk, AnalysisJob.objects.get(pk=correlate.pk).celery_task_id)
    ]
    assert planning.claim_ready_joins(parent.pk) == []  # correlate is queued, not finished
    # correlate done: the masked stages are claimed, with the result's footprint as mask
    AnalysisJob.objects.filter(pk=correlate.pk).update(status=JobStatus.SUCCEEDED)
    result = Result.objects.create(
        project=project, job=correlate, kind="correlate", name="correlation", cell=cell
    )
    claimed = planning.claim_ready_joins(parent.pk)
    assert sorted(pk for pk, _ in claimed) == sorted(c.pk for c in masked)
    for job in masked:
        job.refresh_from_db()
        assert job.parameters["mask"] == {
            "result": result.pk,
            "path": f"/region_{job.region}/cathode_mask",
        }
    assert planning.claim_ready_joins(parent.pk) == []  # each is claimed once


def test_masked_stage_fails_clearly_when_correlate_failed(
    spectra_dataset, xct_engine, project, analyst, factories
):
    from jobs import execution, planning

    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="charged")
    spectra_dataset(factories, project, li=0.1, cell=cell, charge_state=state, region=1)
    content = b"\x89HDF\r\n\x1a\n xct 2"
    factories.make_dataset(
        project, content=content, kind="xct_reconstruction",
        sha256=hashlib.sha256(content).hexdigest(), cell=cell, charge_state=state,
    )  # fmt: skip
    parent, _, chains = planning.record_pipeline(project=project, user=analyst, cell=cell)
    AnalysisJob.objects.filter(pk__in=[pk for ids in chains for pk in ids]).update(
        status=JobStatus.SUCCEEDED
    )
    correlate = parent.children.get(kind="correlate")
    assert [pk for pk, _ in planning.claim_ready_joins(parent.pk)] == [correlate.pk]
    AnalysisJob.objects.filter(pk=correlate.pk).update(status=JobStatus.FAILED)
    (masked_id, _), = planning.claim_ready_joins(parent.pk)  # fmt: skip
    assert execution.execute_job(masked_id) == JobStatus.FAILED
    error = AnalysisJob.objects.get(pk=masked_id).error
    assert f"upstream correlate job #{correlate.pk} failed" in error
