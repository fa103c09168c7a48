"""Jobs driving the real engine stages on small synthetic data.

The XCT reconstruction fanned out over chunks of slices (the chord a worker builds) must give
the same volume as the single-piece run, and both must resemble the phantom.
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from jobs import dispatch, execution
from jobs.models import AnalysisJob, JobStatus, Result


def phantom(n_slices=8, n=32):
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disc = ((yy**2 + xx**2) < (0.35 * n) ** 2).astype(np.float32) * 0.02
    hole = ((yy - 3) ** 2 + (xx + 4) ** 2) < 16
    disc[hole] = 0.0
    return np.repeat(disc[None], n_slices, axis=0)


@pytest.fixture
def projections(project, factories, tmp_path):
    from analysis_engine.synthetic.projections import write_synthetic_nxtomo

    path = tmp_path / "scan.nxs"
    write_synthetic_nxtomo(path, phantom(), n_angles=60, noise=False, seed=1)
    content = path.read_bytes()
    return factories.make_dataset(
        project,
        content=content,
        kind="xct_projections",
        sha256=hashlib.sha256(content).hexdigest(),
    )


def read_volume(result: Result) -> np.ndarray:
    with h5py.File(result.output_file.path, "r") as f:
        return f["entry/reconstruction/data"][()]


def test_reconstruct_job_whole_and_fanned_out_agree(project, analyst, projections):
    params = {"center": 16.0, "chunk_slices": 4}
    whole, _ = dispatch.submit_job(
        project=project, user=analyst, kind="reconstruct", datasets=[projections], parameters=params
    )
    assert execution.execute_job(whole.pk) == JobStatus.SUCCEEDED, AnalysisJob.objects.get(
        pk=whole.pk
    ).error
    whole_result = Result.objects.get(job=whole)
    volume = read_volume(whole_result)
    assert volume.shape == (8, 32, 32)
    truth = phantom()
    inside = truth > 0
    # FBP of a noise-free 60-angle scan: mean attenuation inside the disc within 10 %
    assert volume[inside].mean() == pytest.approx(0.02, rel=0.1)
    assert abs(volume[~inside & (np.hypot(*np.mgrid[:32, :32] - 15.5) < 10)[None]].mean()) < 0.004

    fanned, created = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[projections],
        parameters=params,
        force=True,
    )
    assert created
    n = execution.prepare_fanout(fanned.pk, hostname="worker-a")
    assert n == 2
    # the last chunk to finish says so (its task then enqueues the merge)
    assert [execution.run_chunk(fanned.pk, i) for i in range(n)] == ["done"] * (n - 1) + ["last"]
    assert execution.merge_fanned_out(fanned.pk, hostname="worker-b") == "succeeded"
    fanned.refresh_from_db()
    assert fanned.status == JobStatus.SUCCEEDED and fanned.progress == 1.0
    fan_result = Result.objects.get(job=fanned)
    np.testing.assert_allclose(read_volume(fan_result), volume, atol=1e-6)
    assert fan_result.summary["chunks"] == 2
    assert fan_result.provenance["inputs"][0]["sha256"] == projections.sha256
    assert not list(execution.results_dir(fanned).glob("part-*.h5"))  # parts cleaned up


def test_bad_projection_file_fails_with_the_engine_message(project, analyst, factories):
    content = b"\x89HDF\r\n\x1a\n" + b"\0" * 100  # truncated HDF5
    ds = factories.make_dataset(
        project, content=content, kind="xct_projections", sha256=hashlib.sha256(content).hexdigest()
    )
    job, _ = dispatch.submit_job(project=project, user=analyst, kind="reconstruct", datasets=[ds])
    assert execution.execute_job(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert "HDF5" in job.error and "internal error" not in job.error


def test_whole_cell_pipeline_runs_events_then_compton_with_the_real_engine(
    project, analyst, factories, api_as, tmp_path, django_capture_on_commit_callbacks
):
    from analysis_engine.io.hexitec import write_hexitec_events
    from analysis_engine.synthetic.hexitec import beamline_spectrum, generate_events

    energy = np.arange(2.0, 125.0, 0.05) + 0.025
    events = generate_events(energy, beamline_spectrum(energy), counts=150.0, n_frames=5000, seed=2)
    path = tmp_path / "events.h5"
    write_hexitec_events(
        path,
        frame=events.frame,
        row=events.row,
        col=events.col,
        energy_kev=events.energy_kev,
        n_frames=events.n_frames,
    )
    content = path.read_bytes()
    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="discharged")
    factories.make_dataset(
        project,
        content=content,
        kind="xcs_events",
        sha256=hashlib.sha256(content).hexdigest(),
        cell=cell,
        charge_state=state,
        region=2,
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = api_as(analyst).post(
            "/api/v1/jobs/",
            {"kind": "pipeline", "cell": cell.pk, "parameters": {"compton": {"min_counts": 20}}},
            format="json",
        )
    assert r.status_code == 202, r.content
    parent = AnalysisJob.objects.get(pk=r.json()["id"])
    children = {c.kind: c for c in parent.children.all()}
    assert set(children) == {"events", "compton"}
    assert parent.status == JobStatus.SUCCEEDED, [c.error for c in children.values()]

    spectra = Result.objects.get(job=children["events"])
    assert spectra.summary["events_in"] == events.frame.size  # every event read
    assert spectra.summary["frames"] == 5000
    assert {"spectrum", "counts", "occupancy", "pileup"} <= set(spectra.figures)
    # occupancy per frame in the job summary: events per frame / 6400 pixels, on average
    diagnostics = spectra.summary["diagnostics"]
    assert diagnostics["occupancy_mean"] == pytest.approx(events.frame.size / 5000 / 6400)
    assert sum(diagnostics["occupancy_histogram"]["frames"]) == 5000
    compton = Result.objects.get(job=children["compton"])
    assert (compton.region, compton.charge_state_id) == (2, state.pk)
    assert compton.provenance["inputs"][0]["sha256"] == spectra.sha256
    s, li = compton.summary["s_total"], compton.summary["li_total"]
    assert li == pytest.approx((s - 0.650) / 2.309, abs=1e-3)  # default calibration line
    assert {"li_map", "s_parameter", "profile", "spectrum"} <= set(compton.figures)
    li_map = np.array(compton.figures["li_map"]["data"][0]["z"], dtype=float)
    assert li_map.shape == (80, 80) and np.isfinite(li_map).mean() > 0.9
