"""The one place that knows how a job kind maps onto an ``analysis_engine`` function.

Every engine stage exposes ``run_<command>(input..., output_path, *, options..., progress=None)
-> summary dict`` in its ``commands.py``. A :class:`JobKind` names that function, which inputs
it takes (dataset kinds, or the outputs of earlier stages), how an input file is handed over
(some stages read one dataset inside an HDF5 file, e.g. ``seg.h5:/pore_mask``) and the file
name of its output. The allowed job parameters are the engine function's own keyword-only
options, read from its signature, so the platform never drifts from the engine.

Celery tasks call :func:`run_engine`; nothing here touches the database.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis_engine.errors import EngineInputError

__all__ = [
    "InputSlot",
    "JobKind",
    "JOB_KINDS",
    "PIPELINE_KIND",
    "get_kind",
    "engine_function",
    "allowed_parameters",
    "clean_parameters",
    "run_engine",
    "chunk_functions",
    "call_accepting",
    "submittable_kinds",
]

PIPELINE_KIND = "pipeline"


@dataclass(frozen=True)
class InputSlot:
    """One positional input of an engine function.

    ``accepts`` lists data kinds: dataset kinds (``analysis_engine.io.sniff.DATASET_KINDS``)
    or the ``produces`` kind of another job kind. ``inner_path`` maps a data kind to the HDF5
    dataset path appended to the file path (``file.h5:/inner``) when the engine wants a volume
    spec rather than the whole file.
    """

    name: str
    accepts: tuple[str, ...]
    inner_path: Mapping[str, str] = field(default_factory=dict)
    many: bool = False  # a list of inputs (e.g. one Compton map per depth region)

    def spec_for(self, path: str, data_kind: str) -> str:
        inner = self.inner_path.get(data_kind)
        is_hdf5 = path.lower().endswith((".h5", ".hdf5", ".hdf", ".nxs"))
        return f"{path}:{inner}" if inner and is_hdf5 else path


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    module: str
    function: str
    inputs: tuple[InputSlot, ...]
    produces: str
    output_name: str
    description: str = ""
    # Optional fan-out: per-chunk function + merge function in the same module.
    chunk_function: str | None = None
    merge_function: str | None = None
    plan_function: str | None = None


# Transport stages take the whole segmentation file (``/pore_mask`` + ``/electrode_mask``):
# the engine crops to the box inscribed in the electrode (the paper's sub-volumes inside the
# electrode) instead of solving over the whole field of view (disc + electrolyte around it).
_VOLUME_FROM_SEGMENT: dict[str, str] = {}

JOB_KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind(
            name="events",
            label="Events to spectra",
            module="analysis_engine.events.commands",
            function="run_events",
            inputs=(InputSlot("events", ("xcs_events", "xcs_frames")),),
            produces="xcs_spectra",
            output_name="spectra.h5",
            description="Cluster HEXITEC events (charge sharing) into per-pixel spectra.",
        ),
        JobKind(
            name="compton",
            label="Compton map",
            module="analysis_engine.compton.commands",
            function="run_compton",
            inputs=(InputSlot("spectra", ("xcs_spectra",)),),
            produces="compton_maps",
            output_name="compton.h5",
            description="S-parameter and Li stoichiometry maps from per-pixel spectra (Eqs. 6-9).",
        ),
        JobKind(
            name="reconstruct",
            label="Reconstruct XCT",
            module="analysis_engine.tomo.commands",
            function="run_reconstruct",
            inputs=(InputSlot("projections", ("xct_projections",)),),
            produces="xct_reconstruction",
            output_name="reconstruction.h5",
            description="Flat/dark correction, centre of rotation, ring removal and FBP.",
            chunk_function="reconstruct_chunk",
            merge_function="merge_chunks",
            plan_function="plan_reconstruction",
        ),
        JobKind(
            name="segment",
            label="Segment XCT",
            module="analysis_engine.tomo.segment_commands",
            function="run_segment",
            inputs=(
                InputSlot(
                    "reconstruction",
                    ("xct_reconstruction",),
                    {"xct_reconstruction": "/entry/reconstruction/data"},
                ),
            ),
            produces="segmented_volume",
            output_name="segmentation.h5",
            description="Electrode mask, pores, porosity per depth region.",
        ),
        JobKind(
            name="tortuosity",
            label="Tortuosity",
            module="analysis_engine.transport.commands",
            function="run_tortuosity",
            inputs=(
                InputSlot(
                    "volume",
                    ("segmented_volume", "xct_reconstruction"),
                    _VOLUME_FROM_SEGMENT,
                ),
            ),
            produces="transport_fields",
            output_name="tortuosity.h5",
            description="Steady-state diffusion in the pores: tau, D_eff (TauFactor method).",
        ),
        JobKind(
            name="eis_sim",
            label="Simulated EIS",
            module="analysis_engine.transport.commands",
            function="run_eis_sim",
            inputs=(
                InputSlot(
                    "volume",
                    ("segmented_volume", "xct_reconstruction"),
                    _VOLUME_FROM_SEGMENT,
                ),
            ),
            produces="impedance",
            output_name="eis.h5",
            description="Frequency-domain diffusion (Eq. 1), normalised impedance (Eq. 2), TLM fit.",
        ),
        JobKind(
            name="transport_table",
            label="Transport table (Table 1)",
            module="analysis_engine.transport.commands",
            function="run_transport_table",
            inputs=(
                InputSlot(
                    "volume",
                    ("segmented_volume", "xct_reconstruction"),
                    _VOLUME_FROM_SEGMENT,
                ),
            ),
            produces="transport_table",
            output_name="transport_table.h5",
            description="Porosity, tau and D_directional per depth region and direction.",
        ),
        JobKind(
            name="register",
            label="Register XCT onto Compton",
            module="analysis_engine.registration.commands",
            function="run_register",
            inputs=(
                InputSlot("moving", ("image", "xct_reconstruction")),
                InputSlot("fixed", ("image", "compton_maps"), {"compton_maps": "/compton_counts"}),
            ),
            produces="registration",
            output_name="registration.h5",
            description="Rigid + scale registration of an XCT map onto the Compton grid.",
        ),
        JobKind(
            name="correlate",
            label="Correlate Li with porosity",
            module="analysis_engine.correlation.commands",
            function="run_correlate",
            inputs=(
                InputSlot("xct", ("segmented_volume",)),
                InputSlot("compton", ("compton_maps",), many=True),
            ),
            produces="correlation",
            output_name="correlation.h5",
            description="Register each XCT depth slab onto its Compton map; Li vs porosity.",
        ),
        JobKind(
            name="electrochem",
            label="Electrochemistry (EIS fit, cycling)",
            module="analysis_engine.electrochem.commands",
            function="run_electrochem",
            inputs=(InputSlot("table", ("eis", "cycling")),),
            produces="electrochem",
            output_name="electrochem.h5",
            description="Fit R_e + (R_CT || C) + Warburg with D_overall, or cycling statistics.",
        ),
    )
}


def get_kind(name: str) -> JobKind:
    try:
        return JOB_KINDS[name]
    except KeyError:
        known = ", ".join([*JOB_KINDS, PIPELINE_KIND])
        raise EngineInputError(f"unknown job kind {name!r}; known kinds: {known}") from None


def _import(kind: JobKind, attribute: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(kind.module)
    except ModuleNotFoundError as exc:
        if exc.name and kind.module.startswith(exc.name):
            return None
        raise
    return getattr(module, attribute, None)


def engine_function(kind: JobKind) -> Callable[..., dict]:
    """Return the engine callable of ``kind`` or raise when this engine build lacks it."""
    fn = _import(kind, kind.function)
    if fn is None:
        raise EngineInputError(
            f"the {kind.label} stage is not available in this engine build "
            f"({kind.module}.{kind.function} is missing)"
        )
    return fn


def chunk_functions(
    kind: JobKind,
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]] | None:
    """The (plan, per-chunk, merge) functions of a kind that can fan out, if the engine has them.

    ``plan(input, **options)`` returns ``{"chunks": [[a, b], ...], "chunk_options": {...}}``;
    ``chunk(input, part_path, slices=(a, b), **chunk_options)`` writes one part file;
    ``merge(part_paths, output_path)`` joins them and returns the summary.
    """
    if not (kind.chunk_function and kind.merge_function and kind.plan_function):
        return None
    funcs = [
        _import(kind, name)
        for name in (kind.plan_function, kind.chunk_function, kind.merge_function)
    ]
    return tuple(funcs) if all(funcs) else None  # type: ignore[return-value]


def call_accepting(fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call ``fn`` with only the keyword options its signature accepts."""
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: _engine_value(v) for k, v in options.items() if k in accepted})


def allowed_parameters(kind: JobKind) -> dict[str, Any]:
    """The keyword-only options of the engine function with their defaults (JSON-able)."""
    fn = engine_function(kind)
    params: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.name == "progress":
            continue
        if p.name.endswith("_path"):
            # a server file is never user input: the platform fills these from dataset ids
            # (e.g. a .bin dataset's detector calibration arrays)
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        if isinstance(default, tuple):
            default = list(default)
        if not isinstance(default, str | int | float | bool | list | type(None)):
            default = repr(default)
        params[p.name] = default
    return params


def required_parameters(kind: JobKind) -> list[str]:
    fn = engine_function(kind)
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.default is inspect.Parameter.empty
        and p.name != "progress"
    ]


def clean_parameters(kind: JobKind, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check user parameters against the engine's options; return them in canonical form.

    Raises
    ------
    EngineInputError
        An option the engine does not have, or a required option that is missing.
    """
    parameters = dict(parameters or {})
    allowed = allowed_parameters(kind)
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise EngineInputError(
            f"{kind.name} has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(sorted(allowed)) or 'none'}"
        )
    missing = [name for name in required_parameters(kind) if name not in parameters]
    if missing:
        raise EngineInputError(f"{kind.name} needs the option(s) {', '.join(missing)}")
    return {k: parameters[k] for k in sorted(parameters)}


def _engine_value(value: Any) -> Any:
    # JSON has no tuples; engine options such as range_kev=(lo, hi) expect them.
    if isinstance(value, list):
        return tuple(_engine_value(v) for v in value)
    return value


def run_engine(
    kind: JobKind,
    input_specs: Sequence[str],
    output_path: str,
    parameters: Mapping[str, Any],
    *,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Call the engine function of ``kind``; return its summary dict.

    ``input_specs`` are file paths (or ``file.h5:/inner`` specs), one per input slot; a
    ``many`` slot takes a list of them.
    """
    if len(input_specs) != len(kind.inputs):
        raise EngineInputError(
            f"{kind.name} takes {len(kind.inputs)} input(s) "
            f"({', '.join(s.name for s in kind.inputs)}), got {len(input_specs)}"
        )
    input_specs = [list(v) if isinstance(v, list | tuple) else v for v in input_specs]
    fn = engine_function(kind)
    kwargs = {k: _engine_value(v) for k, v in parameters.items()}
    summary = fn(*input_specs, output_path, **kwargs, progress=progress)
    return dict(summary or {})


def submittable_kinds() -> list[dict[str, Any]]:
    """What the UI and the API list: each available kind with its inputs and options."""
    out = []
    for kind in JOB_KINDS.values():
        try:
            options = allowed_parameters(kind)
            available = True
        except EngineInputError:
            options, available = {}, False
        out.append(
            {
                "kind": kind.name,
                "label": kind.label,
                "description": kind.description,
                "inputs": [
                    {"name": s.name, "accepts": list(s.accepts), "many": s.many}
                    for s in kind.inputs
                ],
                "parameters": options,
                "available": available,
            }
        )
    return out
