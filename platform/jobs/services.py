"""ORM orchestration of analysis jobs: submit (with the deterministic job key), run, cancel.

The Celery tasks in ``tasks.py`` are thin wrappers around :func:`execute_job` and
:func:`finalize_pipeline`; the web views and the API call :func:`submit_job`,
:func:`submit_pipeline` and :func:`cancel_job`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from catalogue.services import with_catalogue_options
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import analysis_engine
from analysis_engine.errors import EngineError, EngineInputError
from analysis_engine.io.common import to_jsonable
from analysis_engine.io.export import export_formats, export_result

from . import engine_registry as registry
from .models import FINISHED_STATUSES, AnalysisJob, JobStatus, Result

log = logging.getLogger(__name__)

__all__ = [
    "JobCancelled",
    "compute_job_key",
    "submit_job",
    "submit_pipeline",
    "cancel_job",
    "execute_job",
    "finalize_pipeline",
    "job_progress",
]

MAX_ATTEMPTS = 3
READY = "ready"


class JobCancelled(Exception):
    """Raised from the progress callback so that cooperative engine work stops."""


def compute_job_key(kind: str, input_checksums: Iterable[str], parameters: dict | None) -> str:
    """sha256 of the kind, the sorted input checksums and the canonical JSON parameters."""
    canonical = json.dumps(parameters or {}, sort_keys=True, separators=(",", ":"), default=str)
    text = "\n".join([kind, ",".join(sorted(input_checksums)), canonical])
    return hashlib.sha256(text.encode()).hexdigest()


def _existing_job(project, job_key: str) -> AnalysisJob | None:
    return (
        AnalysisJob.objects.filter(
            project=project,
            job_key=job_key,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED],
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _data_kind(item) -> str:
    if not isinstance(item, Result):
        return item.kind
    kind = registry.JOB_KINDS.get(item.kind)
    return kind.produces if kind else "report"  # a pipeline's result feeds no stage


def assign_to_slots(kind: registry.JobKind, items: Sequence) -> list:
    """Match inputs to the kind's slots by data kind, whatever order they came in.

    ``items`` are objects (datasets, results) or tuples whose first element is one. A single
    slot takes the first matching input; a ``many`` slot takes every remaining match, ordered
    by depth region. Returns one entry (or list of entries) per slot.

    Raises
    ------
    EngineInputError
        A slot nobody fills, or inputs left over.
    """
    pool = list(items)

    def obj(item):
        return item[0] if isinstance(item, tuple) else item

    out = []
    for slot in kind.inputs:
        matches = [i for i in pool if _data_kind(obj(i)) in slot.accepts]
        if not matches:
            slots = ", ".join(f"{s.name} ({' or '.join(s.accepts)})" for s in kind.inputs)
            given = ", ".join(f"{obj(i)} ({_data_kind(obj(i))})" for i in items) or "nothing"
            raise EngineInputError(f"{kind.label} needs {slots}; got {given}")
        if slot.many:
            matches.sort(key=lambda i: (getattr(obj(i), "region", None) or 0, obj(i).pk))
            out.append(matches)
            pool = [i for i in pool if i not in matches]
        else:
            out.append(matches[0])
            pool.remove(matches[0])
    if pool:
        extra = ", ".join(f"{obj(i)} ({_data_kind(obj(i))})" for i in pool)
        raise EngineInputError(f"{kind.label} does not take {extra}")
    return out


def _check_inputs(kind: registry.JobKind, project, inputs: Sequence) -> list:
    for item in inputs:
        if item.project_id != project.pk:
            raise EngineInputError(f"input {item} belongs to another project")
        if not isinstance(item, Result) and item.status != READY:
            raise EngineInputError(
                f"dataset {item.name!r} is {item.status}, not ready: it cannot be analysed"
            )
    return assign_to_slots(kind, inputs)


def _enqueue_on_commit(job: AnalysisJob) -> None:
    from .tasks import run_job

    job_id, task_id = job.pk, job.celery_task_id
    transaction.on_commit(lambda: run_job.apply_async(args=[job_id], task_id=task_id))


def submit_job(
    *,
    project,
    user,
    kind: str,
    datasets: Sequence = (),
    input_results: Sequence[Result] = (),
    parameters: dict | None = None,
    force: bool = False,
) -> tuple[AnalysisJob, bool]:
    """Record and enqueue one analysis job; return ``(job, created)``.

    Inputs are datasets and/or results of earlier jobs, in the order of the kind's input
    slots (datasets first). The same kind, inputs and parameters return the existing queued,
    running or succeeded job unless ``force`` is true.

    Raises
    ------
    EngineInputError
        Unknown kind or option, inputs of the wrong kind, project or status.
    """
    if kind == registry.PIPELINE_KIND:
        raise EngineInputError("use the pipeline endpoint (a cell) to start a whole-cell pipeline")
    job_kind = registry.get_kind(kind)
    inputs = [*datasets, *input_results]
    _check_inputs(job_kind, project, inputs)
    params = registry.clean_parameters(job_kind, parameters)
    # electrode area, Li+ concentration: from the catalogue's cell when it records them
    params = with_catalogue_options(
        registry.allowed_parameters(job_kind), getattr(inputs[0], "cell", None), params
    )
    key = compute_job_key(kind, [i.sha256 for i in inputs], params)
    with transaction.atomic():
        if not force and (existing := _existing_job(project, key)) is not None:
            return existing, False
        first = inputs[0]
        job = AnalysisJob.objects.create(
            project=project,
            kind=kind,
            parameters=params,
            job_key=key,
            created_by=user,
            celery_task_id=str(uuid.uuid4()),
            cell_id=getattr(first, "cell_id", None),
            charge_state_id=getattr(first, "charge_state_id", None),
            region=getattr(first, "region", None),
            label=f"{job_kind.label}: {first}",
        )
        job.inputs.set(datasets)
        job.input_results.set(input_results)
        _enqueue_on_commit(job)
    return job, True


# -- running -------------------------------------------------------------------------------


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
        updated = AnalysisJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            progress=fraction, step=str(message)[:200], updated_at=timezone.now()
        )
        if not updated:
            raise JobCancelled(f"job {job_id} was cancelled")

    return progress


def results_dir(job: AnalysisJob) -> Path:
    path = Path(settings.MEDIA_ROOT) / "results" / str(job.project_id) / str(job.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_inputs(job: AnalysisJob) -> list[tuple[Any, str, str]]:
    """(object, data kind, absolute path) for each input, datasets first, then results."""
    items: list[tuple[Any, str, str]] = []
    for ds in job.inputs.order_by("id"):
        items.append((ds, ds.kind, ds.file.path))
    results = list(job.input_results.order_by("id"))
    for up in job.upstream.order_by("id"):
        if up.status != JobStatus.SUCCEEDED:
            raise EngineInputError(
                f"the upstream {up.kind} job #{up.pk} {up.status}: nothing to use"
            )
        results.extend(up.results.order_by("id")[:1])
    for res in results:
        if not res.output_file:
            raise EngineInputError(f"result #{res.pk} has no output file")
        items.append((res, _data_kind(res), res.output_file.path))
    return items


def result_exports(result: Result) -> list[str]:
    """The standard formats the result's output converts to (NeXus, .hxt, TIFF, CSV)."""
    if not result.output_file:
        return []
    try:
        return export_formats(result.output_file.path)
    except (EngineInputError, OSError):
        return []


def export_result_file(result: Result, fmt: str) -> Path:
    """The result's output converted to ``fmt``, made once and kept beside it.

    Raises
    ------
    EngineInputError
        The result cannot be exported in that format.
    """
    if fmt not in result_exports(result):
        raise EngineInputError(f"result #{result.pk} offers no {fmt} export")
    source = Path(result.output_file.path)
    target = source.parent / "exports" / f"{source.stem}.{fmt}"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        export_result(source, fmt, target)
    return target


def detector_calibration_options(job: AnalysisJob, inputs) -> dict[str, str]:
    """Raw HEXITEC ``.bin`` inputs of an events job need their per-pixel arrays: the detector
    calibration the dataset was imported with, or its beamtime's only one."""
    from catalogue.models import Dataset, DetectorCalibration

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


def input_specs(job: AnalysisJob, inputs=None) -> list[str]:
    """The engine's input arguments: file paths or ``file.h5:/inner`` specs, slot by slot."""
    kind = registry.get_kind(job.kind)
    inputs = resolve_inputs(job) if inputs is None else inputs
    _check_inputs(kind, job.project, [i[0] for i in inputs])
    specs: list = []
    for slot, assigned in zip(kind.inputs, assign_to_slots(kind, inputs), strict=True):
        if slot.many:
            specs.append([slot.spec_for(path, data_kind) for _, data_kind, path in assigned])
        else:
            _, data_kind, path = assigned
            specs.append(slot.spec_for(path, data_kind))
    return specs


def fail_with(job_id: int, exc: BaseException) -> None:
    """End a job failed: engine errors keep their own message, anything else is labelled."""
    if isinstance(exc, EngineError):
        _fail(job_id, str(exc))
    else:
        log.error("job %s crashed: %s", job_id, "".join(traceback.format_exception(exc)))
        _fail(job_id, f"internal error: {type(exc).__name__}: {exc}")


def _mark(job_id: int, **fields) -> int:
    fields.setdefault("updated_at", timezone.now())
    return AnalysisJob.objects.filter(pk=job_id).update(**fields)


def start_job(job_id: int, hostname: str) -> AnalysisJob | None:
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_STATUSES:
            return None
        if job.attempts >= MAX_ATTEMPTS:
            job.status, job.error = (
                JobStatus.FAILED,
                (f"the worker running this job was lost {job.attempts} times; giving up"),
            )
            job.finished_at = timezone.now()
            job.save()
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.worker = hostname
        job.started_at = timezone.now()
        job.progress, job.step, job.error = 0.0, "starting", ""
        job.save()
    return job


def execute_job(job_id: int, *, hostname: str = "", task_id: str = "") -> str:
    """Run one stage job end to end; return its final status. Never raises for job errors.

    Loads the job, resolves its inputs to file paths, calls ONE engine function with a
    progress callback, stores the HDF5 output, the summary, the Plotly figures and the
    provenance as a :class:`Result`, and marks the job succeeded, failed (with the engine's
    own message) or leaves it cancelled.
    """
    hostname = hostname or socket.gethostname()
    job = start_job(job_id, hostname)
    if job is None:
        return AnalysisJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or ""
    _touch_parent(job)
    started = time.perf_counter()
    kind = registry.get_kind(job.kind)
    out_dir = results_dir(job)
    output_path = out_dir / kind.output_name
    try:
        inputs = resolve_inputs(job)
        specs = input_specs(job, inputs)
        progress = job_progress(job.pk)
        progress(0.0, f"{kind.label}: starting")
        parameters = {**job.parameters, **detector_calibration_options(job, inputs)}
        summary = registry.run_engine(kind, specs, str(output_path), parameters, progress=progress)
        elapsed = time.perf_counter() - started
        if not store_result(job, kind, inputs, output_path, summary, elapsed, hostname, task_id):
            raise JobCancelled(f"job {job_id} was cancelled")
    except JobCancelled:
        log.info("job %s cancelled while running", job_id)
        output_path.unlink(missing_ok=True)
        return JobStatus.CANCELLED
    except EngineError as exc:
        _fail(job_id, str(exc))
        return JobStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - a job must end failed, never stuck running
        log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
        _fail(job_id, f"internal error in {kind.label}: {type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


def _fail(job_id: int, message: str) -> None:
    _mark(job_id, status=JobStatus.FAILED, error=message, finished_at=timezone.now())
    AnalysisJob.objects.filter(pk=job_id, status=JobStatus.FAILED).exclude(progress__gte=1).update(
        step="failed"
    )


def store_result(job, kind, inputs, output_path: Path, summary, elapsed, hostname, task_id) -> bool:
    from . import figures

    engine_figures = summary.pop("figures", None) if isinstance(summary, dict) else None
    summary = to_jsonable(summary)
    figs = figures.build_figures(kind.name, output_path, summary) if output_path.exists() else {}
    if isinstance(engine_figures, dict):  # figures the engine built itself (e.g. correlate)
        for name, fig in to_jsonable(engine_figures).items():
            if isinstance(fig, dict) and "data" in fig:
                figs.setdefault(f"engine_{name}", fig)
    rel = os.path.relpath(output_path, settings.MEDIA_ROOT)
    provenance = {
        "engine_version": analysis_engine.__version__,
        "engine_function": f"{kind.module}.{kind.function}",
        "job_kind": kind.name,
        "job_key": job.job_key,
        "parameters": job.parameters,
        "inputs": [
            {
                "type": "result" if isinstance(obj, Result) else "dataset",
                "id": obj.pk,
                "name": str(obj),
                "kind": data_kind,
                "sha256": obj.sha256,
            }
            for obj, data_kind, _ in inputs
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
        Result.objects.create(
            project_id=job.project_id,
            job=job,
            kind=kind.name,
            name=f"{kind.label} #{job.pk}",
            output_file=rel if output_path.exists() else "",
            sha256=_sha256_file(output_path) if output_path.exists() else "",
            size=output_path.stat().st_size if output_path.exists() else 0,
            summary=summary,
            figures=figs,
            provenance=provenance,
            cell_id=job.cell_id,
            charge_state_id=job.charge_state_id,
            region=job.region,
        )
        locked.status = JobStatus.SUCCEEDED
        locked.progress, locked.step = 1.0, "done"
        locked.finished_at = timezone.now()
        locked.save()
    return True


# -- cancel -------------------------------------------------------------------------------


def cancel_job(job: AnalysisJob) -> bool:
    """Cancel a queued or running job (and a pipeline's unfinished children).

    Marks it cancelled at once, revokes its Celery task (a queued task is then discarded by
    the worker) and lets a running engine stop at its next progress report. Returns False
    when the job had already finished.
    """
    now = timezone.now()
    ids = [job.pk, *job.children.values_list("pk", flat=True)]
    unfinished = AnalysisJob.objects.filter(pk__in=ids).exclude(status__in=FINISHED_STATUSES)
    task_ids = [t for t in unfinished.values_list("celery_task_id", flat=True) if t]
    changed = unfinished.update(
        status=JobStatus.CANCELLED, step="cancelled", finished_at=now, updated_at=now
    )
    if task_ids:
        try:
            from config.celery_app import app

            app.control.revoke(task_ids)
        except Exception as exc:  # noqa: BLE001 - a broker without broadcast (embedded) is fine
            log.info("revoke not delivered (%s); the job stops at its next progress report", exc)
    job.refresh_from_db()
    return changed > 0


# -- whole-cell pipeline ---------------------------------------------------------------------


def _touch_parent(job: AnalysisJob) -> None:
    if job.parent_id:
        AnalysisJob.objects.filter(pk=job.parent_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=timezone.now(), step="running stages"
        )


def pipeline_progress(job: AnalysisJob) -> float:
    values = [c.progress if not c.is_finished else 1.0 for c in job.children.all()]
    return sum(values) / len(values) if values else job.progress


def finalize_pipeline(parent_id: int) -> str:
    """Close a pipeline once every child job has finished; build its comparison summary.

    Idempotent: several chains may call it; only the call that sees every child finished
    and the parent still open does the work.
    """
    from . import reports

    with transaction.atomic():
        parent = AnalysisJob.objects.select_for_update().get(pk=parent_id)
        if parent.is_finished:
            return parent.status
        children = list(parent.children.all())
        deferred = [c for c in children if c.status == JobStatus.QUEUED and not c.celery_task_id]
        if any(not c.is_finished for c in children if c not in deferred):
            return parent.status
        if deferred:
            from .pipelines import dispatch_ready_joins

            dispatch_ready_joins(parent_id)
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


def submit_pipeline(*, project, user, cell, parameters: dict | None = None, force=False):
    """Plan and enqueue the whole-cell pipeline; return ``(parent_job, created)``.

    For every charge state and region of ``cell``: HEXITEC events -> spectra -> Compton map
    (or spectra -> Compton map). For every XCT projection set: reconstruct -> segment ->
    tortuosity through-plane. A final step builds the comparison report.
    ``parameters`` may hold per-stage options: ``{"events": {...}, "compton": {...}, ...}``.
    """
    from . import pipelines

    if cell.project_id != project.pk:
        raise EngineInputError("this cell belongs to another project")
    plan = pipelines.plan_cell(cell, parameters or {})
    if not plan.stages:
        raise EngineInputError(
            f"cell {cell} has no ready datasets to analyse: upload HEXITEC events/frames or "
            "spectra linked to its charge states and regions, or XCT projections"
        )
    params = {k: v for k, v in sorted((parameters or {}).items())}
    key = compute_job_key(registry.PIPELINE_KIND, [f"cell:{cell.pk}", *plan.checksums()], params)
    with transaction.atomic():
        if not force and (existing := _existing_job(project, key)) is not None:
            return existing, False
        parent = AnalysisJob.objects.create(
            project=project,
            kind=registry.PIPELINE_KIND,
            parameters=params,
            job_key=key,
            created_by=user,
            cell=cell,
            label=f"Whole-cell pipeline: {cell}",
            celery_task_id=str(uuid.uuid4()),
        )
        jobs = pipelines.create_child_jobs(parent, plan, user=user)
        parent_id = parent.pk
        transaction.on_commit(lambda: pipelines.launch(parent_id, jobs))
    return parent, True
