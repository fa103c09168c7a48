"""Celery tasks: thin wrappers that load a job by id and hand it to ``services``.

Tasks are acknowledged late and rejected (hence redelivered) when the worker process dies,
so a job whose worker is killed mid-run is picked up again by another worker; the job row
counts attempts and gives up after ``services.MAX_ATTEMPTS``.
"""

from __future__ import annotations

from celery import chord, group, shared_task
from django.db import InterfaceError, OperationalError

from . import pipelines, services

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": False,
    # the database restarting or a dropped connection is worth a few retries
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(bind=True, name="jobs.run_job", **TASK_OPTIONS)
def run_job(self, job_id: int) -> str:
    """Run one analysis stage job; returns its final status.

    A stage that can fan out (XCT reconstruction) is replaced by a chord: one task per chunk
    of slices across the workers, then a merge task that stores the result.
    """
    if pipelines.fanout_enabled():
        n_chunks = pipelines.prepare_fanout(job_id, hostname=self.request.hostname or "")
        if n_chunks:
            fan = chord(
                group(run_chunk.si(job_id, i) for i in range(n_chunks)),
                merge_chunks.si(job_id),
            )
            raise self.replace(fan)
    return services.execute_job(
        job_id, hostname=self.request.hostname or "", task_id=self.request.id or ""
    )


@shared_task(bind=True, name="jobs.run_chunk", **TASK_OPTIONS)
def run_chunk(self, job_id: int, chunk_index: int) -> str:
    """Run one chunk of a fanned-out stage (e.g. a slab of XCT slices)."""
    return pipelines.run_chunk(job_id, chunk_index)


@shared_task(bind=True, name="jobs.merge_chunks", **TASK_OPTIONS)
def merge_chunks(self, job_id: int) -> str:
    """Merge the chunks of a fanned-out stage and store its result."""
    return pipelines.merge_chunks(
        job_id, hostname=self.request.hostname or "", task_id=self.request.id or ""
    )


@shared_task(bind=True, name="jobs.finalize_pipeline", **TASK_OPTIONS)
def finalize_pipeline(self, *_upstream, parent_id: int) -> str:
    """Close a whole-cell pipeline once all its stages have finished."""
    return services.finalize_pipeline(parent_id)
