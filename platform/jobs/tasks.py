"""Celery tasks: a thin shell. Each loads a job by id and hands it to ``execution`` (run,
store) or ``dispatch`` (send the next tasks); no logic of its own.

Tasks are acknowledged late and rejected (hence redelivered) when the worker process dies;
a worker whose whole machine stops is noticed by its missing heartbeat (see
``dispatch.recover_stale_jobs``, run by Celery beat). The job row counts attempts and gives
up after ``execution.MAX_ATTEMPTS``.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import dispatch, execution, planning

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": False,
    # the database restarting or a dropped connection is worth a few retries
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(bind=True, name=dispatch.RUN_JOB, **TASK_OPTIONS)
def run_job(self, job_id: int) -> str:
    """Run one analysis stage job; returns its final status.

    A stage that can fan out (XCT reconstruction) becomes one task per chunk of slices; the
    rest of this task's chain waits until the merge has stored the result.
    """
    if dispatch.fanout_enabled():
        n_chunks = execution.prepare_fanout(job_id, hostname=self.request.hostname or "")
        if n_chunks:
            dispatch.fan_out(job_id, n_chunks, list(self.request.chain or []))
            self.request.chain = None
            return "fanned out"
    return execution.execute_job(
        job_id, hostname=self.request.hostname or "", task_id=self.request.id or ""
    )


@shared_task(bind=True, name=dispatch.RUN_CHUNK, **TASK_OPTIONS)
def run_chunk(self, job_id: int, chunk_index: int) -> str:
    """Run one chunk of a fanned-out stage (e.g. a slab of XCT slices)."""
    outcome = execution.run_chunk(job_id, chunk_index)
    if outcome == "last":
        dispatch.send_merge(job_id)
    elif outcome != "done":  # the job ended (failed, cancelled): the pipeline goes on
        dispatch.send_on_held_chain(job_id)
    return outcome


@shared_task(bind=True, name=dispatch.MERGE_CHUNKS, **TASK_OPTIONS)
def merge_chunks(self, job_id: int) -> str:
    """Merge the chunks of a fanned-out stage, store its result, send on its chain."""
    outcome = execution.merge_fanned_out(
        job_id, hostname=self.request.hostname or "", task_id=self.request.id or ""
    )
    dispatch.send_on_held_chain(job_id)
    return outcome


@shared_task(bind=True, name=dispatch.FINALIZE_PIPELINE, **TASK_OPTIONS)
def finalize_pipeline(self, *_upstream, parent_id: int) -> str:
    """Start the join stages once every chain has finished; close the pipeline after them."""
    dispatch.launch_joins(parent_id, planning.claim_ready_joins(parent_id))
    return execution.finalize_pipeline(parent_id)


@shared_task(bind=True, name=dispatch.RECOVER_STALE_JOBS, ignore_result=True)
def recover_stale_jobs(self) -> dict:
    """Periodic (Celery beat): requeue or fail running jobs whose worker went silent."""
    return dispatch.recover_stale_jobs()
