"""Planning: what to run. Job keys, input slots, whole-cell pipeline plans and job rows.

Pure Django (no Celery, no engine calls): :mod:`jobs.dispatch` records jobs through these
functions and then enqueues them; :mod:`jobs.execution` uses the slot assignment to hand
inputs to the engine.

A pipeline for a cell is one chain of stages per ready raw dataset (e.g. HEXITEC events of the
charged state, region 2: ``events -> compton``; XCT projections: ``reconstruct -> segment ->
transport_table``), join stages that need the ends of several chains (``correlate``: the
segmented XCT plus the Compton maps of one charge state), and a final step that builds the
comparison report. Each stage is a child :class:`~jobs.models.AnalysisJob` of the pipeline
job, so every stage has its own progress, error message, result and provenance.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from catalogue.models import Dataset
from catalogue.services import cathode_composition, with_beamtime_options, with_catalogue_options
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from analysis_engine.errors import EngineInputError

from . import engine_registry as registry
from . import references
from .models import FINISHED_STATUSES, AnalysisJob, JobStatus, Result
from .references import data_kind

__all__ = [
    "READY",
    "INTERRUPTED",
    "UPSTREAM_KEY",
    "compute_job_key",
    "stale_cutoff",
    "stale_running",
    "existing_job",
    "assign_to_slots",
    "check_inputs",
    "record_job",
    "StagePlan",
    "JoinPlan",
    "CellPlan",
    "plan_cell",
    "record_pipeline",
    "claim_ready_joins",
    "pipeline_progress",
]

READY = "ready"
#: A planned option value ``{UPSTREAM_KEY: kind, "path": "/inner"}`` names the result of the
#: job's upstream stage of that kind; :func:`claim_ready_joins` turns it into a result reference.
UPSTREAM_KEY = "upstream"
INTERRUPTED = "interrupted: the worker running this job stopped (no heartbeat)"

RAW_CHAINS = {
    "xcs_events": ("events", "compton"),
    "xcs_frames": ("events", "compton"),
    "xcs_spectra": ("compton",),
    "xct_projections": ("reconstruct", "segment", "transport_table"),
    "xct_reconstruction": ("segment", "transport_table"),
}


def compute_job_key(kind: str, input_checksums: Iterable[str], parameters: dict | None) -> str:
    """sha256 of the kind, the sorted input checksums and the canonical JSON parameters."""
    canonical = json.dumps(parameters or {}, sort_keys=True, separators=(",", ":"), default=str)
    text = "\n".join([kind, ",".join(sorted(input_checksums)), canonical])
    return hashlib.sha256(text.encode()).hexdigest()


def stale_cutoff(stale_after_s: float | None = None):
    """Running jobs whose last heartbeat is older than this have lost their worker."""
    return timezone.now() - timedelta(seconds=stale_after_s or settings.CORRELI_JOB_STALE_S)


def stale_running(cutoff) -> models.QuerySet:
    """Running stage jobs (not pipelines, which have no worker) without a recent heartbeat."""
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)
    return AnalysisJob.objects.filter(silent, status=JobStatus.RUNNING).exclude(
        kind=registry.PIPELINE_KIND
    )


def existing_job(project, job_key: str) -> AnalysisJob | None:
    """The latest live or succeeded job with this key (what a resubmission returns).

    A running job whose worker stopped sending heartbeats is dead, never returned: it is
    marked interrupted here and the caller records a new job.
    """
    job = (
        AnalysisJob.objects.filter(
            project=project,
            job_key=job_key,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED],
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if job is not None and stale_running(stale_cutoff()).filter(pk=job.pk).exists():
        now = timezone.now()
        AnalysisJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED,
            error=f"{INTERRUPTED}; submitted again as a new job",
            step="interrupted",
            finished_at=now,
            updated_at=now,
        )
        return None
    return job


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
        matches = [i for i in pool if data_kind(obj(i)) in slot.accepts]
        if not matches:
            slots = ", ".join(f"{s.name} ({' or '.join(s.accepts)})" for s in kind.inputs)
            given = ", ".join(f"{obj(i)} ({data_kind(obj(i))})" for i in items) or "nothing"
            raise EngineInputError(f"{kind.label} needs {slots}; got {given}")
        if slot.many:
            matches.sort(key=lambda i: (getattr(obj(i), "region", None) or 0, obj(i).pk))
            out.append(matches)
            pool = [i for i in pool if i not in matches]
        else:
            out.append(matches[0])
            pool.remove(matches[0])
    if pool:
        extra = ", ".join(f"{obj(i)} ({data_kind(obj(i))})" for i in pool)
        raise EngineInputError(f"{kind.label} does not take {extra}")
    return out


def check_inputs(kind: registry.JobKind, project, inputs: Sequence) -> list:
    """Inputs of ``project``, ready, fitting the kind's slots; returns the slot assignment."""
    for item in inputs:
        if item.project_id != project.pk:
            raise EngineInputError(f"input {item} belongs to another project")
        if not isinstance(item, Result) and item.status != READY:
            raise EngineInputError(
                f"dataset {item.name!r} is {item.status}, not ready: it cannot be analysed"
            )
    return assign_to_slots(kind, inputs)


def record_job(
    *,
    project,
    user,
    kind: str,
    datasets: Sequence = (),
    input_results: Sequence[Result] = (),
    parameters: dict | None = None,
    force: bool = False,
) -> tuple[AnalysisJob, bool]:
    """Validate and record one stage job (in the caller's transaction); ``(job, created)``.

    The same kind, inputs and parameters return the existing queued, running or succeeded
    job unless ``force`` is true.

    Raises
    ------
    EngineInputError
        Unknown kind or option, inputs of the wrong kind, project or status, a bad data
        reference (:class:`~jobs.references.ReferenceNotFound` when it is not the user's).
    """
    if kind == registry.PIPELINE_KIND:
        raise EngineInputError("use the pipeline endpoint (a cell) to start a whole-cell pipeline")
    job_kind = registry.get_kind(kind)
    inputs = [*datasets, *input_results]
    check_inputs(job_kind, project, inputs)
    params = registry.clean_parameters(job_kind, parameters)
    # electrode area, Li+ concentration: from the catalogue's cell when it records them
    params = with_catalogue_options(
        registry.allowed_parameters(job_kind), getattr(inputs[0], "cell", None), params
    )
    # Compton geometry: from the beamtime of the dataset measured, unless given
    params = with_beamtime_options(registry.allowed_parameters(job_kind), inputs[0], params)
    referenced = references.check_parameters(job_kind, params, project=project, user=user)
    key = compute_job_key(kind, [*(i.sha256 for i in inputs), *referenced], params)
    if not force and (existing := existing_job(project, key)) is not None:
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
    return job, True


# -- whole-cell pipeline ---------------------------------------------------------------------


@dataclass
class StagePlan:
    kind: str
    dataset: Any | None  # the raw dataset for the first stage of a chain
    parameters: dict
    charge_state_id: int | None
    region: int | None
    label: str


@dataclass
class JoinPlan:
    """A stage that needs the ends of several chains (correlate: XCT + Compton per region),
    or the result of an earlier join (the masked compton stage: a region's spectra and the
    correlate stage's cathode footprint of that region)."""

    kind: str
    sources: list[tuple[int, int]]  # (chain index, stage index) of each upstream stage
    parameters: dict
    charge_state_id: int | None
    label: str
    region: int | None = None
    dataset: Any | None = None  # a raw dataset input (spectra uploaded as such)
    after_joins: list[int] = field(default_factory=list)  # indices of upstream joins


@dataclass
class CellPlan:
    chains: list[list[StagePlan]] = field(default_factory=list)
    joins: list[JoinPlan] = field(default_factory=list)

    @property
    def stages(self) -> list[StagePlan]:
        return [s for c in self.chains for s in c]

    def checksums(self) -> list[str]:
        return [c[0].dataset.sha256 for c in self.chains if c and c[0].dataset is not None]


def _stage_parameters(kind: str, parameters: dict) -> dict:
    params = registry.clean_parameters(registry.get_kind(kind), parameters.get(kind) or {})
    if kind == "compton" and params.get("porosity") is None:
        # the composition is for the masked stage's porosity correction (_masked_parameters)
        params.pop("composition", None)
    return params


def plan_cell(cell, parameters: dict) -> CellPlan:
    """Which stages to run for ``cell``: one chain per ready raw dataset linked to it.

    ``parameters`` holds per-stage options: ``{"events": {...}, "compton": {...}, ...}``.
    """
    unknown = sorted(set(parameters) - set(registry.JOB_KINDS))
    if unknown:
        raise EngineInputError(
            f"pipeline parameters are per stage ({', '.join(registry.JOB_KINDS)}); "
            f"unknown: {', '.join(unknown)}"
        )
    for stage, options in parameters.items():
        if not isinstance(options, dict):
            raise EngineInputError(
                f'pipeline parameters are per stage: give {{"{stage}": {{option: value}}}}'
            )
    plan = CellPlan()
    datasets = (
        Dataset.objects.filter(project_id=cell.project_id, cell=cell, status=READY)
        .select_related("charge_state", "beamtime")
        .order_by("charge_state_id", "region", "kind", "id")
    )
    for ds in datasets:
        kinds = RAW_CHAINS.get(ds.kind)
        if not kinds:
            continue
        state = ds.charge_state.state if ds.charge_state_id else ""
        where = " ".join(p for p in (state, f"region {ds.region}" if ds.region else "") if p)
        plan.chains.append(
            [
                StagePlan(
                    kind=kind,
                    dataset=ds if i == 0 else None,
                    parameters=with_beamtime_options(
                        registry.allowed_parameters(registry.get_kind(kind)),
                        ds,
                        _stage_parameters(kind, parameters),
                    ),
                    charge_state_id=ds.charge_state_id,
                    region=ds.region,
                    label=f"{registry.get_kind(kind).label}: {ds.name}"
                    + (f" ({where})" if where else ""),
                )
                for i, kind in enumerate(kinds)
            ]
        )
    given = (parameters.get("compton") or {}).get("composition")
    composition = list(given) if given is not None else cathode_composition(cell)
    _plan_correlations(plan, parameters, composition=composition)
    return plan


def _stage_index(chain_plan: list[StagePlan], kind: str) -> int | None:
    return next((i for i, s in enumerate(chain_plan) if s.kind == kind), None)


def _plan_correlations(
    plan: CellPlan, parameters: dict, *, composition: list[float] | None = None
) -> None:
    """One correlate stage per charge state that has Compton maps and a segmented XCT, then
    per region a masked compton stage inside that region's registered cathode footprint.

    The XCT of the same charge state is used, else the cell's only XCT without a state. The
    masked stage reads the same spectra as the region's compton stage, with the same options,
    and takes ``/region_<k>/cathode_mask`` of the correlate result as its ``mask`` (``k``: the
    region's place among the state's regions, as correlate numbers them); the reference is
    filled in by :func:`claim_ready_joins` once correlate has succeeded.

    When the cathode's composition is known (``composition``: the catalogue's active : carbon :
    binder weight ratios, or the compton parameters' own ``composition``), the masked stage
    also takes ``/region_<k>/non_solid_fraction`` as its ``porosity``: the electrolyte, carbon
    and binder correction, as ``compton --porosity --composition`` applies it. Without a
    composition the stage runs without the correction, and its result says so
    (``matrix_correction`` is null; the report marks it "not applied"). Correlate gets the
    pinhole geometry of the Compton data's beamtime, when recorded, so that the registration
    scale is fixed from the magnification (:func:`_correlate_parameters`).
    """
    xct: dict[int | None, tuple[int, int]] = {}
    compton: dict[int | None, list[tuple[int, int]]] = {}
    for ci, chain_plan in enumerate(plan.chains):
        state = chain_plan[0].charge_state_id
        if (si := _stage_index(chain_plan, "segment")) is not None:
            xct.setdefault(state, (ci, si))
        if (si := _stage_index(chain_plan, "compton")) is not None and chain_plan[si].region:
            compton.setdefault(state, []).append((ci, si))
    for state, sources in compton.items():
        segment = xct.get(state) or (xct.get(None) if len(xct) == 1 else None)
        if segment is None or len(sources) < 1:
            continue
        sources.sort(key=lambda src: plan.chains[src[0]][src[1]].region)
        first = plan.chains[sources[0][0]][0]
        state_name = first.dataset.charge_state.state if first.dataset.charge_state_id else ""
        plan.joins.append(
            JoinPlan(
                kind="correlate",
                sources=[segment, *sources],
                parameters=_correlate_parameters(parameters, first.dataset),
                charge_state_id=state,
                label=f"Correlate Li with porosity ({state_name or 'cell'}, "
                f"{len(sources)} regions)",
            )
        )
        correlate_index = len(plan.joins) - 1
        for position, (ci, si) in enumerate(sources, start=1):
            chain_plan = plan.chains[ci]
            stage = chain_plan[si]
            plan.joins.append(
                JoinPlan(
                    kind="compton",
                    sources=[(ci, si - 1)] if si > 0 else [],
                    dataset=chain_plan[0].dataset if si == 0 else None,
                    after_joins=[correlate_index],
                    parameters=_masked_parameters(stage.parameters, position, composition),
                    charge_state_id=state,
                    region=stage.region,
                    label=f"{stage.label}, cathode footprint only",
                )
            )


def _correlate_parameters(parameters: dict, compton_dataset) -> dict:
    """Correlate's options, with the pinhole geometry of the Compton data's beamtime (when it
    records one and the options give none): the engine then fixes the registration scale
    from the magnification instead of fitting it."""
    params = _stage_parameters("correlate", parameters)
    if "geometry" in registry.allowed_parameters(registry.get_kind("correlate")):
        params = with_beamtime_options({"geometry"}, compton_dataset, params)
    return params


def _masked_parameters(parameters: dict, position: int, composition: list[float] | None) -> dict:
    """The masked compton stage's options: the region's footprint as ``mask`` and, when the
    composition is known, its non-solid fraction as ``porosity``."""
    region = f"/region_{position}"
    out = {**parameters, "mask": {UPSTREAM_KEY: "correlate", "path": f"{region}/cathode_mask"}}
    if not {"porosity", "composition"} <= set(
        registry.allowed_parameters(registry.get_kind("compton"))
    ):
        return {k: out[k] for k in sorted(out)}  # an engine without the correction
    if out.get("composition") is None and composition is not None:
        out["composition"] = list(composition)
    if out.get("composition") is not None and out.get("porosity") is None:
        out["porosity"] = {UPSTREAM_KEY: "correlate", "path": f"{region}/non_solid_fraction"}
    return {k: out[k] for k in sorted(out)}


def record_pipeline(
    *, project, user, cell, parameters: dict | None = None, force: bool = False
) -> tuple[AnalysisJob, bool, list[list[int]]]:
    """Plan and record the whole-cell pipeline (in the caller's transaction).

    Returns ``(parent_job, created, chains)``: ``chains`` lists the child job ids of each
    chain in order (empty when the existing pipeline is returned). Join stages are recorded
    without a Celery task id; :func:`claim_ready_joins` hands them out once their upstream
    stages have finished.
    """
    if cell.project_id != project.pk:
        raise EngineInputError("this cell belongs to another project")
    plan = plan_cell(cell, parameters or {})
    if not plan.stages:
        raise EngineInputError(
            f"cell {cell} has no ready datasets to analyse: upload HEXITEC events/frames or "
            "spectra linked to its charge states and regions, or XCT projections"
        )
    params = {k: v for k, v in sorted((parameters or {}).items())}
    referenced = [
        checksum
        for stage, stage_params in params.items()
        for checksum in references.check_parameters(
            registry.get_kind(stage), stage_params, project=project, user=user
        )
    ]
    key = compute_job_key(
        registry.PIPELINE_KIND, [f"cell:{cell.pk}", *plan.checksums(), *referenced], params
    )
    if not force and (existing := existing_job(project, key)) is not None:
        return existing, False, []
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
    return parent, True, _record_children(parent, plan, user=user)


def _record_children(parent: AnalysisJob, plan: CellPlan, *, user) -> list[list[int]]:
    chains: list[list[int]] = []
    jobs_by_position: dict[tuple[int, int], AnalysisJob] = {}
    for ci, chain_plan in enumerate(plan.chains):
        ids: list[int] = []
        previous: AnalysisJob | None = None
        for si, stage in enumerate(chain_plan):
            source = stage.dataset.sha256 if stage.dataset is not None else previous.job_key
            job = AnalysisJob.objects.create(
                project_id=parent.project_id,
                kind=stage.kind,
                parameters=stage.parameters,
                job_key=compute_job_key(stage.kind, [source], stage.parameters),
                created_by=user,
                parent=parent,
                cell_id=parent.cell_id,
                charge_state_id=stage.charge_state_id,
                region=stage.region,
                label=stage.label,
                celery_task_id=str(uuid.uuid4()),
            )
            if stage.dataset is not None:
                job.inputs.set([stage.dataset])
            else:
                job.upstream.set([previous])
            ids.append(job.pk)
            jobs_by_position[(ci, si)] = job
            previous = job
        chains.append(ids)
    join_jobs: list[AnalysisJob] = []
    for join in plan.joins:
        upstream = [jobs_by_position[src] for src in join.sources]
        upstream += [join_jobs[i] for i in join.after_joins]
        sources = [u.job_key for u in upstream]
        if join.dataset is not None:
            sources.append(join.dataset.sha256)
        job = AnalysisJob.objects.create(
            project_id=parent.project_id,
            kind=join.kind,
            parameters=join.parameters,
            job_key=compute_job_key(join.kind, sources, join.parameters),
            created_by=user,
            parent=parent,
            cell_id=parent.cell_id,
            charge_state_id=join.charge_state_id,
            region=join.region,
            label=join.label,
            celery_task_id="",
        )
        job.upstream.set(upstream)
        if join.dataset is not None:
            job.inputs.set([join.dataset])
        join_jobs.append(job)
    return chains


def claim_ready_joins(parent_id: int) -> list[tuple[int, str]]:
    """Give the pipeline's undispatched join stages a task id once every stage they take
    input from has finished; return ``[(job id, task id)]`` to enqueue (each is claimed once).

    A join whose inputs are other joins (the masked compton stage after correlate) waits for
    them: it is claimed by the final step that follows the last of them. Planned references to
    an upstream stage's result (:data:`UPSTREAM_KEY`) are filled in as the job is claimed.
    """
    with transaction.atomic():
        children = list(AnalysisJob.objects.select_for_update().filter(parent_id=parent_id))
        pending = [c for c in children if c.status == JobStatus.QUEUED and not c.celery_task_id]
        status = {c.pk: c.status for c in children}
        ready = []
        for job in pending:
            upstream = list(job.upstream.all())
            if any(status.get(u.pk, u.status) not in FINISHED_STATUSES for u in upstream):
                continue
            job.parameters = _with_upstream_results(job.parameters, upstream)
            job.celery_task_id = str(uuid.uuid4())
            job.save(update_fields=["celery_task_id", "parameters"])
            ready.append(job)
    return [(job.pk, job.celery_task_id) for job in ready]


def _with_upstream_results(parameters: dict, upstream: Sequence[AnalysisJob]) -> dict:
    """``{UPSTREAM_KEY: kind, "path": p}`` values replaced by ``{"result": id, "path": p}`` of
    the succeeded upstream job of that kind (left as planned when it did not succeed: the job
    then fails for want of that input, see :func:`jobs.execution.resolve_inputs`)."""
    out = dict(parameters)
    for name, value in parameters.items():
        if not (isinstance(value, dict) and UPSTREAM_KEY in value):
            continue
        source = next((u for u in upstream if u.kind == value[UPSTREAM_KEY]), None)
        result = source.results.order_by("-id").first() if source is not None else None
        if source is None or source.status != JobStatus.SUCCEEDED or result is None:
            continue
        out[name] = {"result": result.pk, "path": value.get("path", "")}
    return out


def pipeline_progress(job: AnalysisJob) -> float:
    values = [c.progress if not c.is_finished else 1.0 for c in job.children.all()]
    return sum(values) / len(values) if values else job.progress
