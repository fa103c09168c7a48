"""Periodic purge of stale partial uploads (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from uploads.services import purge_stale_uploads as purge


@shared_task(name="uploads.tasks.purge_stale_uploads", ignore_result=True)
def purge_stale_uploads() -> int:
    """Delete unfinished uploads untouched for ``CORRELI_UPLOAD_STALE_HOURS``; how many."""
    return purge(older_than=timedelta(hours=settings.CORRELI_UPLOAD_STALE_HOURS))
