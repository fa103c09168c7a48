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
    assert kinds == ["compton"] * 3 + ["correlate", "segment", "transport_table"]
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
