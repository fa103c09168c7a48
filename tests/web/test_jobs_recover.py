"""``manage.py recover_jobs``: a restarted single-machine setup frees jobs its stopped worker left."""

import pytest
from django.core.management import call_command
from jobs import services
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
    assert services._existing_job(project, "a" * 64) is None
    assert services._existing_job(project, "c" * 64) == done
