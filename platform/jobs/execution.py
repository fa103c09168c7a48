"""Execution: run one recorded job. Resolve its inputs, call ONE engine function, store the
result and its provenance, keep the job's state, progress and heartbeat. No Celery here:
:mod:`jobs.tasks` calls these functions by job id, and so can a test or a shell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catalogue.models import ComptonCalibration, Dataset, DetectorCalibration
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone
from projects import store

import analysis_engine
from analysis_engine.errors import EngineError, EngineInputError
from analysis_engine.io.common import to_jsonable
from analysis_engine.io.export import export_formats, export_result

from . import engine_registry as registry
from . import figures, planning, references, reports
from .models import FINISHED_STATUSES, AnalysisJob, JobStatus, Result
from .planning import assign_to_slots, check_inputs
from .references import data_kind
from .resources import format_bytes, memory_limit

log = logging.getLogger(__name__)

__all__ = [
    "MAX_ATTEMPTS",
    "JobCancelled",
    "job_progress",
    "results_dir",
    "resolve_inputs",
    "input_specs",
    "start_job",
    "execute_job",
    "fail_with",
    "store_result",
    "mark_cancelled",
    "interrupt",
    "finalize_pipeline",
    "prepare_fanout",
    "run_chunk",
    "merge_fanned_out",
    "heartbeat",
    "result_exports",
    "export_result_file",
    "detector_calibration_options",
]

MAX_ATTEMPTS = 3


class JobCancelled(Exception):
    """Raised from the progress callback so that cooperative engine work stops."""


def job_progress(job_id: int, *, min_interval_s: float = 0.25):
    """A ``progress(fraction, message)`` callback that writes to the job row.

    It raises :class:`JobCancelled` once the job is no longer running (cancelled from the
    web), which stops cooperative engine work at its next progress report.
    """
    last = [0.0]

    def progress(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < min_interval_s and fraction < 1.0:
            return
        last[0] = now
        fraction = min(max(float(fraction), 0.0), 1.0)
        stamp = timezone.now()
        updated = AnalysisJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            progress=fraction, step=str(message)[:200], updated_at=stamp, heartbeat_at=stamp
        )
        if not updated:
            raise JobCancelled(f"job {job_id} was cancelled")

    return progress


@contextmanager
def heartbeat(job_id: int, *, interval_s: float | None = None) -> Iterator[None]:
    """Stamp the job's ``heartbeat_at`` now and every ``CORRELI_JOB_HEARTBEAT_S`` from a thread.

    The stamp says a worker is alive and busy with this job even while the engine runs a long
    step without reporting progress; :func:`jobs.dispatch.recover_stale_jobs` treats a running
    job whose stamp grew old as lost with its worker.
    """
    interval_s = interval_s or settings.CORRELI_JOB_HEARTBEAT_S

    def beat() -> None:
        AnalysisJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            heartbeat_at=timezone.now()
        )

    def run(stop: threading.Event) -> None:
        try:
            while not stop.wait(interval_s):
                try:
                    beat()
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time
                    log.warning("heartbeat of job %s not written: %s", job_id, exc)
        finally:
            close_old_connections()

    beat()
    if settings.CELERY_TASK_ALWAYS_EAGER:  # in-process (tests): no second connection
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def results_dir(job: AnalysisJob) -> Path:
    """Where the job writes its files: the storage folder itself with local storage, the
    worker's scratch area with the object store (uploaded by :func:`store.publish`)."""
    return store.output_dir(f"results/{job.project_id}/{job.pk}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_inputs(job: AnalysisJob) -> list[tuple[Any, str, str]]:
    """(object, data kind, local path) for each input, datasets first, then results.

    With the object store the paths are entries of the worker's input cache (downloaded on
    first use). An upstream stage whose result an option names (the masked compton stage's
    ``mask``: the correlate result) feeds that option, not an input slot.
    """
    items: list[tuple[Any, str, str]] = []
    for ds in job.inputs.order_by("id"):
        items.append((ds, ds.kind, store.local_path(ds.file)))
    results = list(job.input_results.order_by("id"))
    named = {
        value["result"]
        for value in (job.parameters or {}).values()
        if isinstance(value, dict) and "result" in value
    }
    for up in job.upstream.order_by("id"):
        if up.status != JobStatus.SUCCEEDED:
            raise EngineInputError(
                f"the upstream {up.kind} job #{up.pk} {up.status}: nothing to use"
            )
        results.extend(r for r in up.results.order_by("id")[:1] if r.pk not in named)
    for res in results:
        if not res.output_file:
            raise EngineInputError(f"result #{res.pk} has no output file")
        items.append((res, data_kind(res), store.local_path(res.output_file)))
    return items


def result_exports(result: Result) -> list[str]:
    """The standard formats the result's output converts to (NeXus, .hxt, TIFF, CSV)."""
    if not result.output_file:
        return []
    try:
        return export_formats(store.local_path(result.output_file))
    except (EngineInputError, OSError):
        return []


def export_result_file(result: Result, fmt: str) -> tuple[str, str]:
    """The result's output converted to ``fmt``, made once and stored beside it.

    Returns ``(storage name, download file name)``; :func:`store.download_response` serves it.
    With the object store the export is written in the scratch area and uploaded; its name
    carries the source's checksum, so a retried job's new output gets a new export.

    Raises
    ------
    EngineInputError
        The result cannot be exported in that format.
    """
    if fmt not in result_exports(result):
        raise EngineInputError(f"result #{result.pk} offers no {fmt} export")
    source = Path(store.local_path(result.output_file))
    stem = Path(result.output_file.name).stem
    folder = store.output_dir(f"{Path(result.output_file.name).parent.as_posix()}/exports")
    if store.remote():
        target = folder / f"{stem}.{result.sha256[:12]}.{fmt}"
        name = store.stored_name(target)
        if not store.exists(name):
            export_result(source, fmt, target)
            store.publish(target, keep=False)
        return name, f"{stem}.{fmt}"
    target = folder / f"{stem}.{fmt}"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        export_result(source, fmt, target)
    return store.stored_name(target), target.name


def detector_calibration_options(job: AnalysisJob, inputs) -> dict[str, str]:
    """Raw HEXITEC ``.bin`` inputs of an events job need their per-pixel arrays: the detector
    calibration the dataset was imported with, or its beamtime's only one."""
    if job.kind != "events":
        return {}
    for obj, _, _ in inputs:
        metadata = (obj.metadata or {}) if isinstance(obj, Dataset) else {}
        if metadata.get("format") != "hexitec-bin":
            continue
        calibrations = DetectorCalibration.objects.filter(project_id=job.project_id)
        chosen = metadata.get("detector_calibration")
        found = calibrations.filter(pk=chosen).first() if chosen else None
        if found is None and obj.beamtime_id:
            candidates = list(calibrations.filter(beamtime_id=obj.beamtime_id)[:2])
            found = candidates[0] if len(candidates) == 1 else None
        if found is None:
            raise EngineInputError(
                f"dataset {obj.name} is a raw HEXITEC .bin stream: it needs a detector "
                "calibration (gradient and intercept arrays) attached to its beamtime; import "
                "them with the beamtime manifest's calibrations section"
            )
        return found.engine_paths()
    return {}


def input_specs(job: AnalysisJob, inputs=None) -> list:
    """The engine's input arguments: file paths or ``file.h5:/inner`` specs, slot by slot."""
    kind = registry.get_kind(job.kind)
    inputs = resolve_inputs(job) if inputs is None else inputs
    check_inputs(kind, job.project, [i[0] for i in inputs])
    specs: list = []
    for slot, assigned in zip(kind.inputs, assign_to_slots(kind, inputs), strict=True):
        if slot.many:
            specs.append([slot.spec_for(path, kind_) for _, kind_, path in assigned])
        else:
            _, kind_, path = assigned
            specs.append(slot.spec_for(path, kind_))
    return specs


def _own_words(message: str, labels: dict[str, str]) -> str:
    """The engine's message with server paths replaced by the names of the user's objects."""
    for path, label in sorted(labels.items(), key=lambda item: -len(item[0])):
        message = message.replace(path, label)
    for root in store.local_roots():
        message = message.replace(str(root).rstrip("/") + "/", "")
    return message


def _fail(job_id: int, message: str) -> None:
    now = timezone.now()
    AnalysisJob.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error=_own_words(message, {}), finished_at=now, updated_at=now
    )
    AnalysisJob.objects.filter(pk=job_id, status=JobStatus.FAILED).exclude(progress__gte=1).update(
        step="failed"
    )


def _out_of_memory(what: str, limit: int) -> str:
    if limit:
        return (
            f"{what} ran out of memory: it needed more than a worker's limit of "
            f"{format_bytes(limit)} (CORRELI_WORKER_MEMORY_BYTES); use smaller chunks or "
            "blocks (chunk_slices, block_voxels) or a worker with more memory"
        )
    return f"{what} ran out of memory on this worker; use smaller chunks or blocks"


def fail_with(job_id: int, exc: BaseException) -> None:
    """End a job failed: engine errors keep their own message, anything else is labelled."""
    if isinstance(exc, EngineError):
        _fail(job_id, str(exc))
    elif isinstance(exc, store.StoreError):  # the store stayed unreachable: no result recorded
        log.warning("job %s: %s", job_id, exc)
        _fail(job_id, exc.strerror or str(exc))
    else:
        log.error("job %s crashed: %s", job_id, "".join(traceback.format_exception(exc)))
        _fail(job_id, f"internal error: {type(exc).__name__}: {exc}")


def start_job(job_id: int, hostname: str) -> AnalysisJob | None:
    """Mark a job running on ``hostname`` (one more attempt); None when there is nothing to do."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_STATUSES:
            return None
        if job.attempts >= MAX_ATTEMPTS:
            job.status, job.error = (
                JobStatus.FAILED,
                f"the worker running this job was lost {job.attempts} times; giving up",
            )
            job.finished_at = timezone.now()
            job.save()
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.worker = hostname
        job.started_at = job.heartbeat_at = timezone.now()
        job.progress, job.step, job.error = 0.0, "starting", ""
        job.save()
    if job.parent_id:
        AnalysisJob.objects.filter(pk=job.parent_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=timezone.now(), step="running stages"
        )
    return job


def execute_job(job_id: int, *, hostname: str = "", task_id: str = "") -> str:
    """Run one stage job end to end; return its final status. Never raises for job errors.

    Loads the job, resolves its inputs and data references to file paths, calls ONE engine
    function with a progress callback, stores the HDF5 output, the summary, the Plotly
    figures and the provenance as a :class:`Result`, and marks the job succeeded, failed
    (with the engine's own message) or leaves it cancelled.
    """
    hostname = hostname or socket.gethostname()
    job = start_job(job_id, hostname)
    if job is None:
        return AnalysisJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or ""
    started = time.perf_counter()
    kind = registry.get_kind(job.kind)
    output_path = results_dir(job) / kind.output_name
    labels: dict[str, str] = {}
    try:
        with heartbeat(job_id):
            inputs = resolve_inputs(job)
            specs = input_specs(job, inputs)
            options, labels = references.resolve(kind, job.parameters, project=job.project)
            options.update(detector_calibration_options(job, inputs))
            progress = job_progress(job.pk)
            progress(0.0, f"{kind.label}: starting")
            with (
                store.holding([path for _, _, path in inputs]),
                memory_limit(settings.CORRELI_WORKER_MEMORY_BYTES),
            ):
                summary = registry.run_engine(
                    kind, specs, str(output_path), options, progress=progress
                )
            elapsed = time.perf_counter() - started
            if not store_result(
                job, kind, inputs, output_path, summary, elapsed, hostname, task_id
            ):
                raise JobCancelled(f"job {job_id} was cancelled")
    except JobCancelled:
        log.info("job %s cancelled while running", job_id)
        output_path.unlink(missing_ok=True)
        return JobStatus.CANCELLED
    except EngineError as exc:
        _fail(job_id, _own_words(str(exc), labels))
        return JobStatus.FAILED
    except store.StoreError as exc:  # the store stayed unreachable: no result was recorded
        log.warning("job %s: %s", job_id, exc)
        output_path.unlink(missing_ok=True)
        _fail(job_id, f"{kind.label}: {_own_words(exc.strerror or str(exc), labels)}")
        return JobStatus.FAILED
    except MemoryError:
        output_path.unlink(missing_ok=True)
        _fail(job_id, _out_of_memory(kind.label, settings.CORRELI_WORKER_MEMORY_BYTES))
        return JobStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - a job must end failed, never stuck running
        log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
        _fail(job_id, f"internal error in {kind.label}: {type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    finally:
        store.discard_scratch(f"results/{job.project_id}/{job.pk}")
    return JobStatus.SUCCEEDED


def store_result(job, kind, inputs, output_path: Path, summary, elapsed, hostname, task_id) -> bool:
    """Record the Result with provenance and mark the job succeeded (False: cancelled)."""
    engine_figures = summary.pop("figures", None) if isinstance(summary, dict) else None
    summary = to_jsonable(summary)
    if isinstance(summary, dict) and isinstance(summary.get("points"), list):
        names = {path: str(obj) for obj, _, path in inputs}  # standards: names, never paths
        for point in summary["points"]:
            if isinstance(point, dict) and "spectra" in point:
                point["spectra"] = names.get(point["spectra"], "standard")
    figs = figures.build_figures(kind.name, output_path, summary) if output_path.exists() else {}
    if isinstance(engine_figures, dict):  # figures the engine built itself (e.g. correlate)
        for name, fig in to_jsonable(engine_figures).items():
            if isinstance(fig, dict) and "data" in fig:
                figs.setdefault(f"engine_{name}", fig)
    has_output = output_path.exists()
    sha256 = _sha256_file(output_path) if has_output else ""
    size = output_path.stat().st_size if has_output else 0
    # the stored file first: the Result row (what makes a result visible) only once the bytes
    # are in place; a store that stays unreachable fails the job with no result recorded
    name = store.publish(output_path, sha256=sha256) if has_output else ""
    provenance = {
        "engine_version": analysis_engine.__version__,
        "engine_function": registry.function_name(kind),
        "job_kind": kind.name,
        "job_key": job.job_key,
        "parameters": job.parameters,  # data references as given: ids, never paths
        "inputs": [
            {
                "type": "result" if isinstance(obj, Result) else "dataset",
                "id": obj.pk,
                "name": str(obj),
                "kind": kind_,
                "sha256": obj.sha256,
            }
            for obj, kind_, _ in inputs
        ],
        "timings": {
            "queued_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": timezone.now().isoformat(),
            "engine_seconds": round(elapsed, 4),
        },
        "worker": hostname,
        "celery_task_id": task_id,
        "attempt": job.attempts,
    }
    with transaction.atomic():
        locked = AnalysisJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != JobStatus.RUNNING:  # cancelled at the last moment
            return False
        Result.objects.filter(job=job).delete()  # a retried attempt replaces a partial one
        result = Result.objects.create(
            project_id=job.project_id,
            job=job,
            kind=kind.name,
            name=f"{kind.label} #{job.pk}",
            output_file=name,
            sha256=sha256,
            size=size,
            summary=summary,
            figures=figs,
            provenance=provenance,
            cell_id=job.cell_id,
            charge_state_id=job.charge_state_id,
            region=job.region,
        )
        if kind.name == "compton_calibrate":
            record_compton_calibration(result, inputs, summary)
        locked.status = JobStatus.SUCCEEDED
        locked.progress, locked.step = 1.0, "done"
        locked.finished_at = timezone.now()
        locked.save()
    return True


def record_compton_calibration(result: Result, inputs, summary: dict) -> ComptonCalibration | None:
    """The beamtime's Compton calibration from a ``compton_calibrate`` result, when every
    standard was measured in the same beamtime (otherwise the result stays a plain file that
    jobs can name as their ``calibration``)."""
    beamtimes = {getattr(obj, "beamtime_id", None) for obj, _, _ in inputs}
    if len(beamtimes) != 1 or None in beamtimes:
        return None
    fit = summary.get("calibration") or {}
    dataset = inputs[0][0]
    return ComptonCalibration.objects.create(
        project_id=result.project_id,
        beamtime_id=dataset.beamtime_id,
        detector=dataset.beamtime.detector,
        intercept=fit["intercept"],
        slope=fit["slope"],
        intercept_sigma=fit.get("intercept_sigma", 0.0),
        slope_sigma=fit.get("slope_sigma", 0.0),
        covariance_ab=fit.get("covariance_ab", 0.0),
        standards=summary.get("points", []),
        result=result,
        notes=f"fitted by job #{result.job_id} from {len(inputs)} standards",
    )


def interrupt(job_id: int, *, cutoff) -> AnalysisJob | None:
    """Take back a running job whose worker stopped sending heartbeats (before ``cutoff``).

    Returns the job, back in the queue with a new task id (a fan-out plans its chunks
    again), or failed with a clear message after ``MAX_ATTEMPTS``; None when it turned out
    alive or finished meanwhile.
    """
    with transaction.atomic():
        job = planning.stale_running(cutoff).select_for_update().filter(pk=job_id).first()
        if job is None:
            return None
        now = timezone.now()
        if job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            job.error = f"{planning.INTERRUPTED} {job.attempts} times; giving up"
            job.step, job.finished_at = "interrupted", now
        else:
            job.status = JobStatus.QUEUED
            job.celery_task_id = str(uuid.uuid4())
            job.step = f"requeued: worker {job.worker or '?'} stopped (no heartbeat)"
            job.progress, job.fanout = 0.0, {}
        job.updated_at = now
        job.save()
    return job


def mark_cancelled(job: AnalysisJob) -> tuple[bool, list[str]]:
    """Mark a job (and a pipeline's unfinished children) cancelled.

    Returns ``(changed, celery task ids to revoke)``. A running engine stops at its next
    progress report, which sees the job is no longer running.
    """
    now = timezone.now()
    ids = [job.pk, *job.children.values_list("pk", flat=True)]
    unfinished = AnalysisJob.objects.filter(pk__in=ids).exclude(status__in=FINISHED_STATUSES)
    task_ids = [t for t in unfinished.values_list("celery_task_id", flat=True) if t]
    changed = unfinished.update(
        status=JobStatus.CANCELLED, step="cancelled", finished_at=now, updated_at=now
    )
    job.refresh_from_db()
    return changed > 0, task_ids


def finalize_pipeline(parent_id: int) -> str:
    """Close a pipeline once every child job has finished; build its comparison summary.

    Idempotent: every chain ends with it; only the call that sees every child finished
    (join stages included) and the parent still open does the work.
    """
    with transaction.atomic():
        parent = AnalysisJob.objects.select_for_update().get(pk=parent_id)
        if parent.is_finished:
            return parent.status
        children = list(parent.children.all())
        if any(not c.is_finished for c in children):
            return parent.status
        failed = [c for c in children if c.status == JobStatus.FAILED]
        report = reports.build_cell_report(parent.cell) if parent.cell_id else {}
        Result.objects.filter(job=parent).delete()
        Result.objects.create(
            project_id=parent.project_id,
            job=parent,
            kind=registry.PIPELINE_KIND,
            name=f"Whole-cell pipeline #{parent.pk}",
            summary=to_jsonable(
                {
                    "stages": len(children),
                    "succeeded": sum(c.status == JobStatus.SUCCEEDED for c in children),
                    "failed": len(failed),
                    "tables": report.get("tables", {}),
                }
            ),
            figures=report.get("figures", {}),
            provenance={
                "engine_version": analysis_engine.__version__,
                "job_kind": registry.PIPELINE_KIND,
                "job_key": parent.job_key,
                "parameters": parent.parameters,
                "children": [c.pk for c in children],
            },
            cell_id=parent.cell_id,
        )
        parent.progress, parent.finished_at = 1.0, timezone.now()
        if failed:
            parent.status = JobStatus.FAILED
            parent.error = "; ".join(f"{c.label or c.kind} #{c.pk}: {c.error}" for c in failed)[
                :4000
            ]
            parent.step = f"{len(failed)} of {len(children)} stages failed"
        else:
            parent.status, parent.step = JobStatus.SUCCEEDED, "done"
        parent.save()
        return parent.status


# -- fan-out of one stage over chunks (e.g. XCT slabs) -------------------------------------


def prepare_fanout(job_id: int, *, hostname: str) -> int:
    """Start a chunked job and plan its chunks; return how many (0: run it in one piece).

    The plan (slice chunks and the options every chunk shares, e.g. the centre of rotation
    found once on the whole scan) is kept on the job so chunks and merge read it back.
    """
    job = AnalysisJob.objects.get(pk=job_id)
    kind = registry.get_kind(job.kind)
    if kind.chunks is None or job.is_finished:
        return 0
    job = start_job(job_id, hostname)
    if job is None:
        return 0
    try:
        spec = input_specs(job)[0]
        options, _ = references.resolve(kind, job.parameters, project=job.project)
        options = registry.engine_options(kind, options)
        plan = registry.call_accepting(kind.chunks.plan, spec, **options)
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        fail_with(job_id, exc)
        return 0
    chunks = [list(c) for c in plan.get("chunks", [])]
    if len(chunks) < 2:
        # one chunk: reset to queued so execute_job runs it whole, as a fresh attempt
        AnalysisJob.objects.filter(pk=job_id).update(
            status=JobStatus.QUEUED, attempts=max(job.attempts - 1, 0)
        )
        return 0
    summary = {
        k: v for k, v in plan.items() if k not in {"chunks", "chunk_options"} and _jsonish(v)
    }
    AnalysisJob.objects.filter(pk=job_id).update(
        fanout={
            "chunks": chunks,
            "options": plan.get("chunk_options", {}),
            "summary": summary,
            "input": spec,
        },
        step=f"fanned out into {len(chunks)} chunks",
    )
    return len(chunks)


def _jsonish(value) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def part_path(job: AnalysisJob, index: int) -> Path:
    return results_dir(job) / f"part-{index:04d}.h5"


def run_chunk(job_id: int, chunk_index: int) -> str:
    """Process one chunk; a no-op once the job has ended.

    Returns ``"last"`` when this chunk completed the set (the caller then enqueues the
    merge), ``"done"`` for any other finished chunk, or the job's status when it ended.
    """
    job = AnalysisJob.objects.get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        return job.status
    chunks = job.fanout["chunks"]
    functions = registry.get_kind(job.kind).chunks
    slices = tuple(chunks[chunk_index])
    what = f"chunk {chunk_index + 1} of {len(chunks)} (slices {slices[0]}:{slices[1]})"
    limit = settings.CORRELI_WORKER_MEMORY_BYTES
    try:
        with heartbeat(job_id):
            # resolved again here: with the object store the input comes from this worker's
            # cache, and the part goes to the store (the merge may run on another machine)
            inputs = resolve_inputs(job)
            source = input_specs(job, inputs)[0]
            if limit and functions.memory is not None:
                need = registry.call_accepting(
                    functions.memory, source, slices=slices, **job.fanout["options"]
                )
                if need > limit:
                    _fail(
                        job_id,
                        f"{what} needs about {format_bytes(need)} of memory, more than a "
                        f"worker's limit of {format_bytes(limit)} (CORRELI_WORKER_MEMORY_BYTES): "
                        "use fewer slices per chunk (chunk_slices) or a worker with more memory",
                    )
                    return JobStatus.FAILED
            with store.holding([path for _, _, path in inputs]), memory_limit(limit):
                registry.call_accepting(
                    functions.chunk,
                    source,
                    str(part_path(job, chunk_index)),
                    slices=slices,
                    **job.fanout["options"],
                )
            store.publish(part_path(job, chunk_index), keep=False)
    except MemoryError:
        part_path(job, chunk_index).unlink(missing_ok=True)
        _fail(job_id, _out_of_memory(what, limit))
        return JobStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        fail_with(job_id, exc)
        return JobStatus.FAILED
    with transaction.atomic():
        locked = AnalysisJob.objects.select_for_update().get(pk=job_id)
        if locked.status != JobStatus.RUNNING:
            return JobStatus.CANCELLED
        done = sorted({*locked.fanout.get("done", []), chunk_index})
        locked.fanout = {**locked.fanout, "done": done}
        locked.save(update_fields=["fanout"])
        AnalysisJob.objects.filter(pk=job_id).update(
            progress=F("progress") + 0.9 / len(chunks),
            step=f"chunk {chunk_index + 1} of {len(chunks)} done",
            heartbeat_at=timezone.now(),
        )
    return "last" if len(done) == len(chunks) else "done"


def merge_fanned_out(job_id: int, *, hostname: str = "", task_id: str = "") -> str:
    """Join the part files into the stage output and store the result."""
    job = AnalysisJob.objects.get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        return job.status
    kind = registry.get_kind(job.kind)
    names = [store.stored_name(part_path(job, i)) for i in range(len(job.fanout["chunks"]))]
    parts: list[Path] = []
    output_path = results_dir(job) / kind.output_name
    started = time.perf_counter()
    try:
        with heartbeat(job_id):
            parts = [store.fetch(name) for name in names]
            summary = registry.call_accepting(
                kind.chunks.merge, [str(p) for p in parts], str(output_path)
            )
            summary = {**job.fanout.get("summary", {}), **summary, "chunks": len(parts)}
            stored = store_result(
                job,
                kind,
                resolve_inputs(job),
                output_path,
                summary,
                time.perf_counter() - started,
                hostname,
                task_id,
            )
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        fail_with(job_id, exc)
        return JobStatus.FAILED
    finally:
        for p in parts:
            p.unlink(missing_ok=True)
        store.discard_scratch(f"results/{job.project_id}/{job.pk}")
        if store.remote():
            for name in names:
                try:
                    store.delete(name)
                except OSError as exc:  # the job folder goes with the job
                    log.warning("part %s not removed from the store: %s", name, exc)
    return JobStatus.SUCCEEDED if stored else JobStatus.CANCELLED
