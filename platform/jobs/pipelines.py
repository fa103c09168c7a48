"""The whole-cell pipeline and fan-out of heavy stages, expressed with Celery primitives.

A pipeline for a cell is a group of chains, one chain per raw dataset (e.g. HEXITEC events
of the charged state, region 2: ``events -> compton``; XCT projections: ``reconstruct ->
segment -> tortuosity``), followed by a final step that builds the comparison report. With a
result backend this is a chord; on the embedded broker (no result backend) every chain ends
with the same idempotent final step, which only acts when it sees every stage finished.

Each stage is a child :class:`~jobs.models.AnalysisJob` of the pipeline job, so every stage
has its own progress, error message, result and provenance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from celery import chain, chord, group
from django.conf import settings

from analysis_engine.errors import EngineInputError

from . import engine_registry as registry
from .models import AnalysisJob

log = logging.getLogger(__name__)

__all__ = ["StagePlan", "CellPlan", "plan_cell", "create_child_jobs", "launch"]

RAW_CHAINS = {
    "xcs_events": ("events", "compton"),
    "xcs_frames": ("events", "compton"),
    "xcs_spectra": ("compton",),
    "xct_projections": ("reconstruct", "segment", "transport_table"),
    "xct_reconstruction": ("segment", "transport_table"),
}
# Through-plane transport runs along the electrode thickness (region 1 at index 0).
STAGE_DEFAULTS = {"tortuosity": {"axis": 0}, "eis_sim": {"axis": 0}}


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
    """A stage that needs the ends of several chains (correlate: XCT + Compton per region)."""

    kind: str
    sources: list[tuple[int, int]]  # (chain index, stage index) of each upstream stage
    parameters: dict
    charge_state_id: int | None
    label: str


@dataclass
class CellPlan:
    chains: list[list[StagePlan]] = field(default_factory=list)
    joins: list[JoinPlan] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def stages(self) -> list[StagePlan]:
        return [s for c in self.chains for s in c]

    def checksums(self) -> list[str]:
        return [c[0].dataset.sha256 for c in self.chains if c and c[0].dataset is not None]


def _available(kind: str) -> bool:
    try:
        registry.allowed_parameters(registry.get_kind(kind))
    except EngineInputError:
        return False
    return True


def _stage_parameters(kind: str, parameters: dict) -> dict:
    params = {**STAGE_DEFAULTS.get(kind, {}), **(parameters.get(kind) or {})}
    return registry.clean_parameters(registry.get_kind(kind), params)


def plan_cell(cell, parameters: dict) -> CellPlan:
    """Which stages to run for ``cell``: one chain per ready raw dataset linked to it."""
    from catalogue.models import Dataset

    unknown = sorted(set(parameters) - set(registry.JOB_KINDS))
    if unknown:
        raise EngineInputError(
            f"pipeline parameters are per stage ({', '.join(registry.JOB_KINDS)}); "
            f"unknown: {', '.join(unknown)}"
        )
    plan = CellPlan()
    datasets = (
        Dataset.objects.filter(project_id=cell.project_id, cell=cell, status="ready")
        .select_related("charge_state")
        .order_by("charge_state_id", "region", "kind", "id")
    )
    for ds in datasets:
        kinds = RAW_CHAINS.get(ds.kind)
        if not kinds:
            continue
        chain_plan: list[StagePlan] = []
        for kind in kinds:
            if not _available(kind):
                plan.skipped.append(f"{kind} (engine stage not available) for {ds.name}")
                break
            state = ds.charge_state.state if ds.charge_state_id else ""
            where = " ".join(p for p in (state, f"region {ds.region}" if ds.region else "") if p)
            chain_plan.append(
                StagePlan(
                    kind=kind,
                    dataset=ds if not chain_plan else None,
                    parameters=_stage_parameters(kind, parameters),
                    charge_state_id=ds.charge_state_id,
                    region=ds.region,
                    label=f"{registry.get_kind(kind).label}: {ds.name}"
                    + (f" ({where})" if where else ""),
                )
            )
        if chain_plan:
            plan.chains.append(chain_plan)
    _plan_correlations(plan, parameters)
    return plan


def _stage_index(chain_plan: list[StagePlan], kind: str) -> int | None:
    return next((i for i, s in enumerate(chain_plan) if s.kind == kind), None)


def _plan_correlations(plan: CellPlan, parameters: dict) -> None:
    """One correlate stage per charge state that has Compton maps and a segmented XCT.

    The XCT of the same charge state is used, else the cell's only XCT without a state.
    """
    if not _available("correlate"):
        return
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
                parameters=_stage_parameters("correlate", parameters),
                charge_state_id=state,
                label=f"Correlate Li with porosity ({state_name or 'cell'}, "
                f"{len(sources)} regions)",
            )
        )


def create_child_jobs(parent: AnalysisJob, plan: CellPlan, *, user) -> dict[str, list]:
    """Create one child job per planned stage.

    Returns ``{"chains": [[job ids in chain order], ...], "joins": [job ids]}``. Join stages
    start with no Celery task id: they are dispatched once their upstream stages finished.
    """
    import uuid

    from .services import compute_job_key

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
    joins: list[int] = []
    for join in plan.joins:
        upstream = [jobs_by_position[src] for src in join.sources]
        job = AnalysisJob.objects.create(
            project_id=parent.project_id,
            kind=join.kind,
            parameters=join.parameters,
            job_key=compute_job_key(join.kind, [u.job_key for u in upstream], join.parameters),
            created_by=user,
            parent=parent,
            cell_id=parent.cell_id,
            charge_state_id=join.charge_state_id,
            label=join.label,
            celery_task_id="",
        )
        job.upstream.set(upstream)
        joins.append(job.pk)
    if plan.skipped:
        AnalysisJob.objects.filter(pk=parent.pk).update(
            step=f"skipped: {'; '.join(plan.skipped)}"[:200]
        )
    return {"chains": chains, "joins": joins}


def _has_result_backend() -> bool:
    from config.celery_app import app

    return bool(app.conf.result_backend) or bool(
        getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    )


def launch(parent_id: int, jobs: dict[str, list]) -> None:
    """Enqueue the pipeline: a chord of per-dataset chains, then the join stages (correlate)
    and the final report step."""
    import uuid

    from .tasks import finalize_pipeline, run_job

    task_ids = dict(
        AnalysisJob.objects.filter(parent_id=parent_id).values_list("id", "celery_task_id")
    )
    chains = [
        chain(*[run_job.si(job_id).set(task_id=task_ids[job_id]) for job_id in ids])
        for ids in jobs["chains"]
    ]
    final = finalize_pipeline.si(parent_id=parent_id)
    if _has_result_backend():
        body = final
        if jobs["joins"]:
            join_tasks = []
            for job_id in jobs["joins"]:
                task_id = str(uuid.uuid4())
                AnalysisJob.objects.filter(pk=job_id).update(celery_task_id=task_id)
                join_tasks.append(run_job.si(job_id).set(task_id=task_id))
            body = chain(group(join_tasks), final)
        chord(group(chains), body).apply_async()
    else:
        # no result backend: each chain ends in the final step, which dispatches the join
        # stages once every chain has finished and closes the pipeline after them
        for c in chains:
            (c | final).apply_async()


def dispatch_ready_joins(parent_id: int) -> int:
    """Enqueue join stages not yet dispatched (no task id); return how many."""
    import uuid

    from django.db import transaction

    from .tasks import finalize_pipeline, run_job

    pending = list(
        AnalysisJob.objects.select_for_update().filter(
            parent_id=parent_id, status="queued", celery_task_id=""
        )
    )
    for job in pending:
        job.celery_task_id = str(uuid.uuid4())
        job.save(update_fields=["celery_task_id"])
        signature = run_job.si(job.pk).set(task_id=job.celery_task_id) | finalize_pipeline.si(
            parent_id=parent_id
        )
        transaction.on_commit(signature.apply_async)
    return len(pending)


# -- fan-out of one stage over chunks (e.g. XCT slabs) -------------------------------------


def fanout_enabled() -> bool:
    """Fan out only with a result backend (chords need one) and a real worker."""
    from config.celery_app import app

    return bool(app.conf.result_backend) and not app.conf.task_always_eager


def prepare_fanout(job_id: int, *, hostname: str) -> int:
    """Start a chunked job and plan its chunks; return how many (0: run it in one piece).

    The plan (slice chunks and the options every chunk shares, e.g. the centre of rotation
    found once on the whole scan) is kept on the job so chunks and merge read it back.
    """
    from . import services

    job = AnalysisJob.objects.get(pk=job_id)
    funcs = registry.chunk_functions(registry.get_kind(job.kind))
    if funcs is None or job.is_finished:
        return 0
    job = services.start_job(job_id, hostname)
    if job is None:
        return 0
    plan_fn = funcs[0]
    try:
        spec = services.input_specs(job)[0]
        plan = registry.call_accepting(plan_fn, spec, **job.parameters)
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        services.fail_with(job_id, exc)
        return 0
    chunks = [list(c) for c in plan.get("chunks", [])]
    if len(chunks) < 2:
        # one chunk: reset to queued so execute_job runs it whole, as a fresh attempt
        AnalysisJob.objects.filter(pk=job_id).update(
            status="queued", attempts=max(job.attempts - 1, 0)
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
    import json

    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def part_path(job: AnalysisJob, index: int):
    from .services import results_dir

    return results_dir(job) / f"part-{index:04d}.h5"


def run_chunk(job_id: int, chunk_index: int) -> str:
    """Reconstruct (or otherwise process) one chunk; a no-op once the job has ended."""
    from django.db.models import F

    from . import services

    job = AnalysisJob.objects.get(pk=job_id)
    if job.status != "running":
        return job.status
    _, chunk_fn, _ = registry.chunk_functions(registry.get_kind(job.kind))
    chunks = job.fanout["chunks"]
    try:
        registry.call_accepting(
            chunk_fn,
            job.fanout["input"],
            str(part_path(job, chunk_index)),
            slices=tuple(chunks[chunk_index]),
            **job.fanout["options"],
        )
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        services.fail_with(job_id, exc)
        return "failed"
    done = AnalysisJob.objects.filter(pk=job_id, status="running").update(
        progress=F("progress") + 0.9 / len(chunks),
        step=f"chunk {chunk_index + 1} of {len(chunks)} done",
    )
    return "done" if done else "cancelled"


def merge_chunks(job_id: int, *, hostname: str = "", task_id: str = "") -> str:
    """Join the part files into the stage output and store the result."""
    import time

    from . import services

    job = AnalysisJob.objects.get(pk=job_id)
    if job.status != "running":
        return job.status
    kind = registry.get_kind(job.kind)
    _, _, merge_fn = registry.chunk_functions(kind)
    parts = [part_path(job, i) for i in range(len(job.fanout["chunks"]))]
    output_path = services.results_dir(job) / kind.output_name
    started = time.perf_counter()
    try:
        summary = registry.call_accepting(merge_fn, [str(p) for p in parts], str(output_path))
        summary = {**job.fanout.get("summary", {}), **summary, "chunks": len(parts)}
        inputs = services.resolve_inputs(job)
        stored = services.store_result(
            job,
            kind,
            inputs,
            output_path,
            summary,
            time.perf_counter() - started,
            hostname,
            task_id,
        )
    except Exception as exc:  # noqa: BLE001 - the job ends failed with the message
        services.fail_with(job_id, exc)
        return "failed"
    finally:
        for p in parts:
            p.unlink(missing_ok=True)
    return "succeeded" if stored else "cancelled"
