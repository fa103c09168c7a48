"""Jobs left by a stopped worker: ``manage.py recover_jobs`` at a single-machine restart, and
the heartbeat check (``dispatch.recover_stale_jobs``, run by Celery beat) while running."""

import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from jobs import dispatch, execution, planning
from jobs.models import AnalysisJob, JobStatus

pytestmark = pytest.mark.django_db


def _job(project, status, key):
    return AnalysisJob.objects.create(project=project, kind="events", status=status, job_key=key)


def test_unfinished_jobs_become_interrupted_and_finished_ones_stay(project):
    running = _job(project, JobStatus.RUNNING, "a" * 64)
    queued = _job(project, JobStatus.QUEUED, "b" * 64)
    done = _job(project, JobStatus.SUCCEEDED, "c" * 64)

    call_command("recover_jobs")

    for job in (running, queued):
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED
        assert job.error.startswith("interrupted")
        assert job.finished_at is not None
    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED
    # An interrupted job no longer blocks resubmission under the same key.
    assert planning.existing_job(project, "a" * 64) is None
    assert planning.existing_job(project, "c" * 64) == done


def _stamped(project, key, *, seconds_ago, status=JobStatus.RUNNING, attempts=1):
    job = _job(project, status, key)
    stamp = timezone.now() - timedelta(seconds=seconds_ago)
    AnalysisJob.objects.filter(pk=job.pk).update(
        heartbeat_at=stamp, updated_at=stamp, attempts=attempts, celery_task_id="old-task"
    )
    return job


def test_resubmitting_never_returns_a_job_whose_worker_went_silent(
    project, analyst, factories, settings
):
    settings.CORRELI_JOB_STALE_S = 60
    content = b"spectra placeholder"
    ds = factories.make_dataset(
        project, content=content, kind="xcs_spectra", sha256=hashlib.sha256(content).hexdigest()
    )
    # not enqueued: on_commit callbacks do not run inside the test's transaction
    job, created = dispatch.submit_job(project=project, user=analyst, kind="compton", datasets=[ds])
    assert created
    AnalysisJob.objects.filter(pk=job.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(seconds=30)
    )
    alive, created = dispatch.submit_job(
        project=project, user=analyst, kind="compton", datasets=[ds]
    )
    assert (alive.pk, created) == (job.pk, False)  # 30 s without a beat: still alive

    AnalysisJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    again, created = dispatch.submit_job(
        project=project, user=analyst, kind="compton", datasets=[ds]
    )
    assert created and again.pk != job.pk
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error.startswith("interrupted")


def test_stale_jobs_are_requeued_and_given_up_after_three_attempts(project, settings):
    settings.CORRELI_JOB_STALE_S = 60
    fresh = _stamped(project, "f" * 64, seconds_ago=10)
    silent = _stamped(project, "s" * 64, seconds_ago=90)
    worn = _stamped(project, "w" * 64, seconds_ago=90, attempts=execution.MAX_ATTEMPTS)
    pipeline = _stamped(project, "p" * 64, seconds_ago=900)
    AnalysisJob.objects.filter(pk=pipeline.pk).update(kind="pipeline")

    cutoff = planning.stale_cutoff()
    assert set(planning.stale_running(cutoff)) == {silent, worn}  # pipelines have no worker
    assert execution.interrupt(fresh.pk, cutoff=cutoff) is None
    requeued = execution.interrupt(silent.pk, cutoff=cutoff)
    assert requeued.status == JobStatus.QUEUED
    assert requeued.celery_task_id not in ("", "old-task") and requeued.step.startswith("requeued")
    given_up = execution.interrupt(worn.pk, cutoff=cutoff)
    assert given_up.status == JobStatus.FAILED
    assert given_up.error == f"{planning.INTERRUPTED} 3 times; giving up"
    assert execution.interrupt(silent.pk, cutoff=cutoff) is None  # queued now: left alone


def test_the_liveness_check_is_scheduled_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["jobs-recover-stale"]
    assert entry["task"] == dispatch.RECOVER_STALE_JOBS
    assert settings.CORRELI_JOB_STALE_S + entry["schedule"] < 120  # the 2-minute promise
    assert settings.CORRELI_JOB_HEARTBEAT_S * 3 < settings.CORRELI_JOB_STALE_S


@pytest.mark.parametrize("attempts", [1, execution.MAX_ATTEMPTS], ids=["requeued", "given-up"])
def test_a_silent_pipeline_stage_is_run_again_and_the_pipeline_closes(
    attempts, fake_engine, spectra_dataset, project, analyst, factories, settings
):
    """The worker holding a pipeline chain died mid-stage: the check sends the stage, the rest
    of its chain and the final step again (eager here, so they run in this process)."""
    settings.CORRELI_JOB_STALE_S = 60
    cell = factories.make_cell(project)
    spectra_dataset(factories, project, li=0.7, cell=cell, region=1)
    # recorded, not launched: on_commit callbacks do not run inside the test's transaction
    parent, _ = dispatch.submit_pipeline(project=project, user=analyst, cell=cell)
    (stage,) = parent.children.all()
    silent = timezone.now() - timedelta(seconds=90)
    AnalysisJob.objects.filter(pk__in=[stage.pk, parent.pk]).update(
        status=JobStatus.RUNNING, heartbeat_at=silent, updated_at=silent, attempts=attempts
    )

    outcome = dispatch.recover_stale_jobs()

    stage.refresh_from_db()
    parent.refresh_from_db()
    if attempts == 1:
        assert outcome == {"requeued": [stage.pk], "failed": []}
        assert (stage.status, stage.attempts) == (JobStatus.SUCCEEDED, 2)
        assert parent.status == JobStatus.SUCCEEDED
    else:
        assert outcome == {"requeued": [], "failed": [stage.pk]}
        assert stage.status == JobStatus.FAILED and stage.error.startswith("interrupted")
        assert parent.status == JobStatus.FAILED and "interrupted" in parent.error
