"""Dispatch: submit, launch, cancel and recover jobs. The only module of the job layer that
knows Celery; it names tasks by their registered names (``jobs.run_job``, ...), so it never
imports ``jobs.tasks`` and ``tasks`` can import it.

Every fan-in goes through the database, never a chord, so no result backend is needed:

- a whole-cell pipeline is one Celery chain per dataset, each ending in the idempotent
  ``jobs.finalize_pipeline``, which hands out the join stages (correlate) once every chain
  has finished and closes the pipeline after them;
- a stage that fans out (XCT reconstruction) sends one ``jobs.run_chunk`` per chunk; the last
  chunk to finish sends ``jobs.merge_chunks``, which sends on the rest of the chain that the
  fanned-out task held back.
"""

from __future__ import annotations

import logging

from celery import chain, group, signature
from config.celery_app import app
from django.db import transaction

from . import execution, planning
from .models import AnalysisJob, JobStatus

log = logging.getLogger(__name__)

__all__ = [
    "RUN_JOB",
    "RUN_CHUNK",
    "MERGE_CHUNKS",
    "FINALIZE_PIPELINE",
    "RECOVER_STALE_JOBS",
    "submit_job",
    "submit_pipeline",
    "cancel_job",
    "launch_pipeline",
    "launch_joins",
    "fanout_enabled",
    "fan_out",
    "send_merge",
    "send_on_held_chain",
    "recover_stale_jobs",
]

RUN_JOB = "jobs.run_job"
RUN_CHUNK = "jobs.run_chunk"
MERGE_CHUNKS = "jobs.merge_chunks"
FINALIZE_PIPELINE = "jobs.finalize_pipeline"
RECOVER_STALE_JOBS = "jobs.recover_stale_jobs"


def _run(job_id: int, task_id: str):
    return app.signature(RUN_JOB, args=[job_id], immutable=True).set(task_id=task_id)


def _finalize(parent_id: int):
    return app.signature(FINALIZE_PIPELINE, kwargs={"parent_id": parent_id}, immutable=True)


# -- submit ----------------------------------------------------------------------------------


def submit_job(**request) -> tuple[AnalysisJob, bool]:
    """Record one stage job and enqueue it once the transaction commits; ``(job, created)``.

    Takes the keyword arguments of :func:`jobs.planning.record_job`.
    """
    with transaction.atomic():
        job, created = planning.record_job(**request)
        if created:
            job_id, task_id = job.pk, job.celery_task_id
            transaction.on_commit(lambda: _run(job_id, task_id).apply_async())
    return job, created


def submit_pipeline(**request) -> tuple[AnalysisJob, bool]:
    """Record the whole-cell pipeline and launch its chains on commit; ``(parent, created)``.

    Takes the keyword arguments of :func:`jobs.planning.record_pipeline`.
    """
    with transaction.atomic():
        parent, created, chains = planning.record_pipeline(**request)
        if created:
            parent_id = parent.pk
            transaction.on_commit(lambda: launch_pipeline(parent_id, chains))
    return parent, created


def launch_pipeline(parent_id: int, chains: list[list[int]]) -> None:
    """One Celery chain per dataset, each ending in the pipeline's final step."""
    task_ids = dict(
        AnalysisJob.objects.filter(parent_id=parent_id).values_list("id", "celery_task_id")
    )
    for ids in chains:
        chain(
            *[_run(job_id, task_ids[job_id]) for job_id in ids], _finalize(parent_id)
        ).apply_async()


def launch_joins(parent_id: int, claimed: list[tuple[int, str]]) -> None:
    """Enqueue join stages claimed by :func:`jobs.planning.claim_ready_joins`."""
    for job_id, task_id in claimed:
        (_run(job_id, task_id) | _finalize(parent_id)).apply_async()


# -- cancel ------------------------------------------------------------------------------------


def cancel_job(job: AnalysisJob) -> bool:
    """Cancel a queued or running job (and a pipeline's unfinished children).

    Marks it cancelled at once, revokes its Celery task (a queued task is then discarded by
    the worker) and lets a running engine stop at its next progress report. Returns False
    when the job had already finished.
    """
    changed, task_ids = execution.mark_cancelled(job)
    if task_ids:
        try:
            app.control.revoke(task_ids)
        except Exception as exc:  # noqa: BLE001 - a broker without broadcast (embedded) is fine
            log.info("revoke not delivered (%s); the job stops at its next progress report", exc)
    return changed


# -- fan-out over chunks ------------------------------------------------------------------


def fanout_enabled() -> bool:
    """Fan out only on real workers (eager mode runs every stage in one piece)."""
    return not app.conf.task_always_eager


def fan_out(job_id: int, n_chunks: int, held_chain: list) -> None:
    """Send one chunk task per chunk; keep the rest of the caller's chain until the merge."""
    if held_chain:
        with transaction.atomic():
            job = AnalysisJob.objects.select_for_update().get(pk=job_id)
            job.fanout = {**job.fanout, "then": held_chain}
            job.save(update_fields=["fanout"])
    group(
        app.signature(RUN_CHUNK, args=[job_id, i], immutable=True) for i in range(n_chunks)
    ).apply_async()


def send_merge(job_id: int) -> None:
    app.signature(MERGE_CHUNKS, args=[job_id], immutable=True).apply_async()


def send_on_held_chain(job_id: int) -> None:
    """Send on the chain a fanned-out job held back (once, whoever asks first)."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().get(pk=job_id)
        rest = list(job.fanout.get("then") or [])
        if not rest:
            return
        job.fanout = {k: v for k, v in job.fanout.items() if k != "then"}
        job.save(update_fields=["fanout"])
    signature(rest.pop(), app=app).apply_async(chain=rest)


# -- liveness ------------------------------------------------------------------------------


def _chain_after(job: AnalysisJob) -> list[AnalysisJob]:
    """The queued stages a pipeline chain runs after ``job`` (their messages were lost with
    the worker that held the chain)."""
    out = []
    current = job
    while True:
        nxt = (
            current.downstream.filter(status=JobStatus.QUEUED, parent_id=job.parent_id)
            .exclude(celery_task_id="")
            .first()
        )
        if nxt is None:
            return out
        out.append(nxt)
        current = nxt


def recover_stale_jobs(*, stale_after_s: float | None = None) -> dict[str, list[int]]:
    """Requeue (or, after ``MAX_ATTEMPTS``, fail) running jobs whose heartbeat stopped.

    A worker stamps ``heartbeat_at`` of the job it runs every ``CORRELI_JOB_HEARTBEAT_S``;
    a running job whose stamp is older than ``CORRELI_JOB_STALE_S`` lost its worker. The job
    goes back to the queue with a new task id (and, for a pipeline stage, the rest of its
    chain and the final step); a fan-out plans its chunks again. Celery beat runs this every
    ``CORRELI_JOB_LIVENESS_CHECK_S``.
    """
    cutoff = planning.stale_cutoff(stale_after_s)
    requeued, failed = [], []
    for job_id in list(planning.stale_running(cutoff).values_list("pk", flat=True)):
        job = execution.interrupt(job_id, cutoff=cutoff)
        if job is None:
            continue
        (failed if job.status == JobStatus.FAILED else requeued).append(job.pk)
        # A failed job's task ends at once; either way the rest of a pipeline chain (whose
        # messages went with the worker) runs, or fails for want of input, and the pipeline
        # closes.
        steps = [_run(job.pk, job.celery_task_id)]
        steps += [_run(j.pk, j.celery_task_id) for j in _chain_after(job)]
        if job.parent_id:
            steps.append(_finalize(job.parent_id))
        chain(*steps).apply_async()
    if requeued or failed:
        log.warning("stale jobs: requeued %s, failed %s", requeued, failed)
    return {"requeued": requeued, "failed": failed}
