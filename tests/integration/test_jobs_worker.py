"""Analysis jobs on real Celery worker processes (PostgreSQL + Redis).

- An XCT reconstruction fans out over chunks of slices as a chord on the worker and stores
  its result.
- A worker SIGKILLed in the middle of a job: the unacknowledged task is redelivered (acks_late)
  and a freshly started worker completes the job (attempt 2).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.integration.conftest import (
    READY_TIMEOUT_S,
    ROOT,
    WorkerProcess,
    _check_services,
    _database_url,
    _services_required,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_broker(settings):
    _check_services(settings)
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        assert not _services_required()
        pytest.skip(
            "needs CELERY_BROKER_URL=redis://...: the embedded SQLAlchemy broker cannot "
            "redeliver the task of a killed worker"
        )
    return settings.CELERY_BROKER_URL


def _worker_starter(broker: str, settings, tmp_path):
    """``start(result_backend=False, beat=False, **env)``: a worker process on a queue of this
    test; returns (start, stop_all)."""
    from config.celery_app import app
    from django.db import connection

    queue = f"correli-jobs-itest-{uuid.uuid4().hex[:8]}"
    started: list[WorkerProcess] = []
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue

    def start(*, result_backend: bool = False, beat: bool = False, **extra_env) -> WorkerProcess:
        name = f"w{len(started) + 1}-{queue}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker,
            # without an explicit backend the settings' default applies (Redis with a Redis
            # broker, none with the embedded one)
            "CELERY_RESULT_BACKEND": broker.rsplit("/", 1)[0] + "/14" if result_backend else "",
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / f"{name}-beat"),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
            **extra_env,
        }
        log_path = tmp_path / f"{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
            "--pool", "solo", "--queues", queue, "--hostname", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
            *(["--beat"] if beat else []),
        ]  # fmt: skip
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
        worker = WorkerProcess(process, log_path, queue)
        worker.name = name
        started.append(worker)
        worker.wait_for(lambda: " ready." in worker.log(), timeout=READY_TIMEOUT_S)
        return worker

    def stop_all() -> None:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        for worker in started:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
                try:
                    worker.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait(timeout=10)
            # an embedded beat runs in a child process of the worker: end the whole group
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    return start, stop_all


@pytest.fixture
def start_worker(redis_broker, settings, tmp_path):
    """Workers on Redis, whose visibility timeout (2 s here) redelivers a killed worker's task."""
    start, stop_all = _worker_starter(redis_broker, settings, tmp_path)

    def start_redis(**kwargs):
        # a killed worker's task comes back after 2 s, checked every second
        return start(
            CELERY_VISIBILITY_TIMEOUT="2",
            CELERY_UNACKED_RESTORE_INTERVAL="1",
            CELERY_UNACKED_RESTORE_THROTTLE="1",
            **kwargs,
        )

    yield start_redis
    stop_all()


@pytest.fixture
def start_any_worker(settings, tmp_path):
    """Workers on this session's broker, Redis or the embedded default, default visibility."""
    _check_services(settings)
    start, stop_all = _worker_starter(settings.CELERY_BROKER_URL, settings, tmp_path)
    yield start
    stop_all()


def scan_dataset(project, factories, tmp_path: Path, *, n_slices: int, n: int = 96):
    from analysis_engine.synthetic.projections import write_synthetic_nxtomo

    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disc = ((yy**2 + xx**2) < (0.35 * n) ** 2).astype(np.float32) * 0.02
    path = tmp_path / "scan.nxs"
    write_synthetic_nxtomo(path, np.repeat(disc[None], n_slices, axis=0), n_angles=180, noise=False)
    content = path.read_bytes()
    return factories.make_dataset(
        project, content=content, kind="xct_projections", sha256=hashlib.sha256(content).hexdigest()
    )


def test_reconstruction_fans_out_as_a_chord_and_stores_its_result(
    start_worker, project, analyst, factories, tmp_path
):
    from jobs import dispatch
    from jobs.models import AnalysisJob, Result

    worker = start_worker(result_backend=True)
    ds = scan_dataset(project, factories, tmp_path, n_slices=16)
    job, created = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[ds],
        parameters={"center": 47.5, "chunk_slices": 4},
    )
    assert created
    worker.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).is_finished, timeout=180, interval=0.5
    )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0
    result = Result.objects.get(job=job)
    assert result.summary["chunks"] == 4
    assert "jobs.run_chunk" in worker.log() and "jobs.merge_chunks" in worker.log()
    with h5py.File(result.output_file.path, "r") as f:
        volume = f["entry/reconstruction/data"][()]
    assert volume.shape == (16, 96, 96)
    centre = volume[:, 38:58, 38:58]
    assert centre.mean() == pytest.approx(0.02, rel=0.1)
    assert result.provenance["inputs"][0]["sha256"] == ds.sha256


def test_job_survives_a_worker_killed_mid_run(start_worker, project, analyst, factories, tmp_path):
    from jobs import dispatch
    from jobs.models import AnalysisJob, Result

    first = start_worker()
    ds = scan_dataset(project, factories, tmp_path, n_slices=64, n=128)
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[ds],
        parameters={"center": 63.5, "chunk_slices": 4},
    )

    # kill as soon as the engine runs: reconstruction speed changes, the job start does not
    first.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).status == "running", timeout=120, interval=0.02
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = AnalysisJob.objects.get(pk=job.pk)
    assert killed_at.status == "running" and killed_at.attempts == 1
    assert killed_at.progress < 1.0 and not Result.objects.filter(job=job).exists()

    second = start_worker()
    second.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).is_finished, timeout=180, interval=0.5
    )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    assert job.worker.startswith(second.name)
    result = Result.objects.get(job=job)
    assert result.provenance["attempt"] == 2
    with h5py.File(result.output_file.path, "r") as f:
        assert f["entry/reconstruction/data"].shape == (64, 128, 128)


def test_cancelling_a_running_job_stops_the_engine_at_its_next_report(
    start_worker, project, analyst, factories, tmp_path
):
    from jobs import dispatch, execution
    from jobs.models import AnalysisJob, Result

    worker = start_worker()
    ds = scan_dataset(project, factories, tmp_path, n_slices=64, n=128)
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[ds],
        parameters={"center": 63.5, "chunk_slices": 4},
    )
    worker.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).status == "running", timeout=120, interval=0.02
    )
    assert dispatch.cancel_job(AnalysisJob.objects.get(pk=job.pk))
    # the task ends (returning "cancelled") well before the reconstruction would have finished
    worker.wait_for(lambda: "'cancelled'" in worker.log(), timeout=60, interval=0.2)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.progress < 1.0
    assert not Result.objects.filter(job=job).exists()
    assert not (execution.results_dir(job) / "reconstruction.h5").exists()


def test_pipeline_with_a_fanned_out_stage_runs_on_any_broker_without_result_backend(
    celery_worker_process, project, analyst, factories, tmp_path
):
    """The embedded default (or Redis in CI), no result backend: the reconstruction fans out
    over chunks, the merge sends the held chain on (segment, transport table), and the final
    step closes the pipeline. No chord anywhere."""
    from config.celery_app import app
    from jobs import dispatch
    from jobs.models import AnalysisJob, Result

    assert not app.conf.task_always_eager
    cell = factories.make_cell(project)
    ds = scan_dataset(project, factories, tmp_path, n_slices=16)
    ds.cell = cell
    ds.save()
    parent, created = dispatch.submit_pipeline(
        project=project,
        user=analyst,
        cell=cell,
        parameters={"reconstruct": {"center": 47.5, "chunk_slices": 4}},
    )
    assert created
    celery_worker_process.wait_for(
        lambda: AnalysisJob.objects.get(pk=parent.pk).is_finished, timeout=300, interval=0.5
    )
    children = {c.kind: c for c in AnalysisJob.objects.filter(parent=parent)}
    assert set(children) == {"reconstruct", "segment", "transport_table"}
    reconstruct = children["reconstruct"]
    assert reconstruct.status == "succeeded", reconstruct.error
    assert Result.objects.get(job=reconstruct).summary["chunks"] == 4
    # the stages after the fan-out ran (whatever the engine made of a plain disc)
    assert all(c.is_finished and c.attempts == 1 for c in children.values())
    assert Result.objects.filter(job=parent).exists()


LIVENESS = {
    "CORRELI_JOB_HEARTBEAT_S": "1",
    "CORRELI_JOB_STALE_S": "5",
    "CORRELI_JOB_LIVENESS_CHECK_S": "2",
}


def test_a_killed_workers_job_is_requeued_by_the_heartbeat_check_within_two_minutes(
    start_any_worker, project, analyst, factories, tmp_path
):
    """kill -9 the worker mid-job on either broker (Redis keeps its 6 h visibility timeout
    here, the embedded broker never redelivers): the job's heartbeat stops, the beat-driven
    check of a new worker requeues it, and it completes as attempt 2."""
    import time

    from jobs import dispatch, planning
    from jobs.models import AnalysisJob, Result

    first = start_any_worker(**LIVENESS)
    # large enough that the reconstruction runs for seconds on a fast machine
    ds = scan_dataset(project, factories, tmp_path, n_slices=128, n=256)
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="reconstruct",
        datasets=[ds],
        parameters={"center": 127.5, "chunk_slices": 128},  # one piece: one task to lose
    )
    first.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).status == "running", timeout=120, interval=0.02
    )
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    assert AnalysisJob.objects.get(pk=job.pk).status == "running"

    # a resubmission meanwhile never gets the dead job once its heartbeat is stale
    second = start_any_worker(beat=True, **LIVENESS)
    second.wait_for(
        lambda: AnalysisJob.objects.get(pk=job.pk).is_finished, timeout=120, interval=0.5
    )
    recovered_s = time.monotonic() - killed_at
    job.refresh_from_db()
    assert job.status == "succeeded", (job.error, second.log()[-3000:])
    assert job.attempts == 2 and job.worker.startswith(second.name)
    assert recovered_s < 120
    assert "jobs.recover_stale_jobs" in second.log()
    assert Result.objects.get(job=job).provenance["attempt"] == 2
    print(f"killed worker's job completed {recovered_s:.1f} s after the kill")
    assert planning.existing_job(project, job.job_key) == job
