"""A worker that would run out of memory on a chunk fails that chunk with a clear message."""

from __future__ import annotations

import hashlib
import resource

import numpy as np
import pytest
from jobs import dispatch, execution
from jobs.models import AnalysisJob, JobStatus
from jobs.resources import memory_limit, process_size_bytes

from analysis_engine.tomo.commands import (
    BASE_PROCESS_BYTES,
    chunk_memory_bytes,
    estimate_chunk_memory,
)


@pytest.fixture
def projections(project, factories, tmp_path):
    from analysis_engine.synthetic.projections import write_synthetic_nxtomo

    yy, xx = np.mgrid[:32, :32] - 15.5
    disc = ((yy**2 + xx**2) < 11**2).astype(np.float32) * 0.02
    path = tmp_path / "scan.nxs"
    write_synthetic_nxtomo(path, np.repeat(disc[None], 8, axis=0), n_angles=60, noise=False)
    content = path.read_bytes()
    return factories.make_dataset(
        project, content=content, kind="xct_projections", sha256=hashlib.sha256(content).hexdigest()
    )


def fan_out(project, analyst, projections):
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[projections],
        parameters={"center": 16.0, "chunk_slices": 4},
        force=True,
    )
    assert execution.prepare_fanout(job.pk, hostname="worker") == 2
    job.refresh_from_db()
    return job


def test_chunk_estimate_against_the_measured_paper_chunk():
    # benchmarks/results/paper_scale.md: 8 slices of 3600 x 2048, stitched to 3718 wide,
    # Fourier backend, peak RSS 2194 MB under /usr/bin/time.
    need = chunk_memory_bytes(
        rows=8, projections=3600, cols=2048, width=3718, itemsize=2, half_acquisition=True
    )
    assert need + BASE_PROCESS_BYTES == pytest.approx(2194 * 1024**2, rel=0.1)
    # linear in the slices of the chunk, beyond the fixed part
    one = chunk_memory_bytes(rows=1, projections=3600, cols=2048, width=3718)
    two = chunk_memory_bytes(rows=2, projections=3600, cols=2048, width=3718)
    nine = chunk_memory_bytes(rows=9, projections=3600, cols=2048, width=3718)
    assert nine - one == 8 * (two - one)


def test_chunk_over_the_worker_limit_fails_before_it_runs(project, analyst, projections, settings):
    job = fan_out(project, analyst, projections)
    spec = job.fanout["input"]
    need = estimate_chunk_memory(spec, slices=(0, 4), center=16.0)
    settings.CORRELI_WORKER_MEMORY_BYTES = need - 1
    assert execution.run_chunk(job.pk, 0) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "chunk 1 of 2 (slices 0:4) needs about" in job.error
    assert "CORRELI_WORKER_MEMORY_BYTES" in job.error and "chunk_slices" in job.error
    assert not list(execution.results_dir(job).glob("part-*.h5"))
    # the other chunk is a no-op once the job failed
    assert execution.run_chunk(job.pk, 1) == JobStatus.FAILED


def test_chunk_running_out_of_memory_fails_with_a_clear_message(
    project, analyst, projections, settings, monkeypatch
):
    job = fan_out(project, analyst, projections)
    # The estimate passes, but the chunk allocates more than the limit allows: the soft
    # RLIMIT_AS turns that into a MemoryError and the job fails saying so.
    settings.CORRELI_WORKER_MEMORY_BYTES = 64 * 1024**2
    monkeypatch.setattr(
        "analysis_engine.tomo.commands.reconstruct_slices",
        lambda *a, **k: (np.ones((4, 8192, 8192), np.float32), 16.0),  # 1 GiB
    )
    before = resource.getrlimit(resource.RLIMIT_AS)
    assert execution.run_chunk(job.pk, 0) == JobStatus.FAILED
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the limit is put back
    job = AnalysisJob.objects.get(pk=job.pk)
    assert job.error.startswith("chunk 1 of 2 (slices 0:4) ran out of memory")
    assert "64 MiB" in job.error and "internal error" not in job.error
    assert not list(execution.results_dir(job).glob("part-*.h5"))


def test_memory_limit_bounds_new_allocations_and_is_restored():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory_limit(200 * 1024**2) as soft:
        assert soft is not None and soft <= process_size_bytes() + 200 * 1024**2
        small = np.ones(10 * 1024**2, np.uint8)  # 10 MB fits
        with pytest.raises(MemoryError):
            np.ones(2 * 1024**3, np.uint8)
        del small
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    np.ones(512 * 1024**2, np.uint8)  # fine again
    with memory_limit(0) as soft:
        assert soft is None
