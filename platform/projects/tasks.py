"""Periodic housekeeping of the storage (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from projects import files


@shared_task(name="projects.tasks.retry_file_removals", ignore_result=True)
def retry_file_removals() -> dict:
    """Remove files whose earlier removal failed; returns counts."""
    outcome = files.retry_pending()
    return {"removed": len(outcome["removed"]), "failed": len(outcome["failed"])}
