"""The one place that knows how a job kind maps onto an ``analysis_engine`` function.

Every engine stage exposes ``run_<command>(input..., output_path, *, options..., progress=None)
-> summary dict`` in its ``commands.py``. A :class:`JobKind` holds that function itself (an
imported callable, so a reader or a static tool follows the path), which inputs it takes
(dataset kinds, or the outputs of earlier stages), how an input file is handed over (some
stages read one dataset inside an HDF5 file, e.g. ``seg.h5:/pore_mask``) and the file name of
its output. The allowed job parameters are the engine function's own keyword-only options,
read from its signature, so the platform never drifts from the engine.

Nothing here touches the database or Celery: this module sits just above the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis_engine.commands import function_parameters, validate_function_parameters
from analysis_engine.compton.commands import run_compton, run_compton_calibrate_spectra
from analysis_engine.correlation.commands import run_correlate
from analysis_engine.electrochem.commands import run_electrochem
from analysis_engine.errors import EngineInputError
from analysis_engine.events.commands import run_events
from analysis_engine.parameters import ParameterSpec
from analysis_engine.registration.commands import run_register
from analysis_engine.tomo.commands import (
    estimate_chunk_memory,
    merge_chunks,
    plan_reconstruction,
    reconstruct_chunk,
    run_reconstruct,
)
from analysis_engine.tomo.segment_commands import run_segment
from analysis_engine.transport.commands import run_eis_sim, run_tortuosity, run_transport_table

__all__ = [
    "InputSlot",
    "DataParameter",
    "JobKind",
    "JOB_KINDS",
    "PIPELINE_KIND",
    "get_kind",
    "engine_function",
    "function_name",
    "ChunkFunctions",
    "parameter_specs",
    "allowed_parameters",
    "required_parameters",
    "is_reference",
    "is_platform_parameter",
    "looks_like_path",
    "engine_options",
    "clean_parameters",
    "run_engine",
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
class DataParameter:
    """An engine option that names data: given as a dataset/result id, never a path.

    ``accepts`` lists data kinds (dataset kinds, or the ``produces`` kind of a job kind);
    ``inner_path`` says whether a dataset inside an HDF5 file may be named (``"path"``),
    ``inner_path_required`` whether it must. See ``jobs.references``.
    """

    accepts: tuple[str, ...]
    inner_path: bool = False
    inner_path_required: bool = False
    # The option also takes plain values that name no file (e.g. compton's background "fit",
    # a geometry given as an object); path-like strings are refused all the same.
    allow_values: bool = False
    help: str = ""


# Any HDF5 (or image) output holding 2D maps on the Compton grid can be a mask.
MAP_KINDS = ("image", "other", "compton_maps", "registration", "correlation")


@dataclass(frozen=True)
class ChunkFunctions:
    """How a stage fans out over chunks (e.g. slabs of XCT slices).

    ``plan(input, **options)`` returns ``{"chunks": [[a, b], ...], "chunk_options": {...}}``;
    ``chunk(input, part_path, slices=(a, b), **chunk_options)`` writes one part file;
    ``merge(part_paths, output_path)`` joins them and returns the summary;
    ``memory(input, slices=(a, b), **chunk_options)``, when given, estimates one chunk's peak
    memory in bytes (checked against ``CORRELI_WORKER_MEMORY_BYTES`` before it runs).
    """

    plan: Callable[..., dict]
    chunk: Callable[..., Any]
    merge: Callable[..., dict]
    memory: Callable[..., int] | None = None


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    function: Callable[..., dict]
    inputs: tuple[InputSlot, ...]
    produces: str
    output_name: str
    description: str = ""
    # Engine options that name data (see DataParameter); every other option takes a value.
    data_parameters: Mapping[str, DataParameter] = field(default_factory=dict)
    # Engine options the platform fills itself (never a user): not listed, not accepted.
    # Every option named ``*_path`` is one (a server file is never user input; e.g. a raw
    # stream's detector calibration arrays, see jobs.execution.detector_calibration_options).
    platform_parameters: frozenset[str] = frozenset()
    chunks: ChunkFunctions | None = None


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
            function=run_events,
            inputs=(InputSlot("events", ("xcs_events", "xcs_frames")),),
            produces="xcs_spectra",
            output_name="spectra.h5",
            description="Cluster HEXITEC events (charge sharing) into per-pixel spectra.",
        ),
        JobKind(
            name="compton",
            label="Compton map",
            function=run_compton,
            inputs=(InputSlot("spectra", ("xcs_spectra",)),),
            produces="compton_maps",
            output_name="compton.h5",
            description="S-parameter and Li stoichiometry maps from per-pixel spectra (Eqs. 6-9).",
            # Declared ahead of options an engine build may not have yet: a name the engine
            # lacks is refused as unknown before these apply.
            data_parameters={
                "mask": DataParameter(
                    MAP_KINDS,
                    inner_path=True,
                    help="a 2D map on the Compton pixel grid; nonzero = inside",
                ),
                "calibration": DataParameter(
                    ("other", "compton_calibration"),
                    allow_values=True,
                    help='"A,B" or [A, B] of S = A + B (1 - x), or a calibration file',
                ),
                "geometry": DataParameter(
                    ("other",),
                    allow_values=True,
                    help="the instrument geometry as an object, or a geometry JSON file",
                ),
                "background": DataParameter(
                    ("xcs_spectra", "other"),
                    inner_path=True,
                    allow_values=True,
                    help='"fit", "none", or a background spectrum file',
                ),
                "resolution_fwhm": DataParameter(
                    MAP_KINDS, inner_path=True, allow_values=True, help="per-pixel FWHM map"
                ),
                "porosity": DataParameter(
                    ("segmented_volume", *MAP_KINDS),
                    inner_path=True,
                    help="a porosity map on the Compton grid (e.g. a correlation result)",
                ),
            },
        ),
        JobKind(
            name="compton_calibrate",
            label="Compton calibration",
            function=run_compton_calibrate_spectra,
            inputs=(InputSlot("spectra", ("xcs_spectra",), many=True),),
            produces="compton_calibration",
            output_name="calibration.json",
            description=(
                "Fit S = A + B (1 - x) with its covariance from spectra of reference standards "
                "(one_minus_x: their known 1 - x, in the order of the datasets' ids); stored as "
                "the beamtime's Compton calibration."
            ),
            data_parameters={
                "geometry": DataParameter(
                    ("other",),
                    allow_values=True,
                    help="the instrument geometry as an object, or a geometry JSON file",
                ),
                "background": DataParameter(
                    ("xcs_spectra", "other"),
                    inner_path=True,
                    allow_values=True,
                    help='"fit", "none", or a background spectrum file',
                ),
            },
        ),
        JobKind(
            name="reconstruct",
            label="Reconstruct XCT",
            function=run_reconstruct,
            inputs=(InputSlot("projections", ("xct_projections",)),),
            produces="xct_reconstruction",
            output_name="reconstruction.h5",
            description="Flat/dark correction, centre of rotation, ring removal and FBP.",
            chunks=ChunkFunctions(
                plan_reconstruction, reconstruct_chunk, merge_chunks, estimate_chunk_memory
            ),
        ),
        JobKind(
            name="segment",
            label="Segment XCT",
            function=run_segment,
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
            function=run_tortuosity,
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
            function=run_eis_sim,
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
            function=run_transport_table,
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
            function=run_register,
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
            function=run_correlate,
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
            function=run_electrochem,
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


def engine_function(kind: JobKind) -> Callable[..., dict]:
    """The engine callable of ``kind``."""
    return kind.function


def function_name(kind: JobKind) -> str:
    """``module.function`` of the engine callable, as provenance records it."""
    return f"{kind.function.__module__}.{kind.function.__qualname__}"


def call_accepting(fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call ``fn`` with only the keyword options its signature accepts."""
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in options.items() if k in accepted})


def is_platform_parameter(kind: JobKind, name: str) -> bool:
    """An option the platform fills itself: listed in ``platform_parameters`` or ``*_path``."""
    return name in kind.platform_parameters or name.endswith("_path")


def parameter_specs(kind: JobKind) -> tuple[ParameterSpec, ...]:
    """The options a user may set, described as the command line describes them (name,
    type, default, help, units, choices): ``--help`` and the kinds endpoint say the same."""
    return tuple(
        spec
        for spec in function_parameters(kind.function)
        if not is_platform_parameter(kind, spec.name)
    )


def allowed_parameters(kind: JobKind) -> dict[str, Any]:
    """The options a user may set, with their defaults (JSON-able)."""
    return {spec.name: spec.default for spec in parameter_specs(kind)}


def required_parameters(kind: JobKind) -> list[str]:
    return [spec.name for spec in parameter_specs(kind) if spec.required]


def is_reference(value: Any) -> bool:
    """``{"dataset": id}`` or ``{"result": id, ...}``: data named by id (see jobs.references)."""
    return isinstance(value, Mapping) and ("dataset" in value or "result" in value)


def looks_like_path(value: Any) -> bool:
    """A string (or a string nested in a list/dict) that could name a file on the server."""
    if isinstance(value, str):
        return "/" in value or "\\" in value or value.startswith("~") or ".." in value
    if isinstance(value, list | tuple):
        return any(looks_like_path(v) for v in value)
    if isinstance(value, Mapping):
        return is_reference(value) or any(map(looks_like_path, value.values()))
    return False


def clean_parameters(kind: JobKind, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check user parameters as the command line checks its options; return them (JSON, sorted).

    Data references (options that name data) are left to ``jobs.references``; every other
    value must have the option's type and choices.

    Raises
    ------
    EngineInputError
        An option the engine does not have (or the platform fills itself), a missing
        required option, a value of the wrong type or outside the choices.
    """
    parameters = dict(parameters or {})
    hidden = sorted(name for name in parameters if is_platform_parameter(kind, name))
    if hidden:
        raise EngineInputError(
            f"{kind.name} has no option {', '.join(hidden)}; "
            f"its options are: {', '.join(sorted(allowed_parameters(kind))) or 'none'}"
        )
    for name, value in parameters.items():
        # checked before the types, so that no message repeats a path
        if name not in kind.data_parameters and looks_like_path(value):
            raise EngineInputError(
                f"{kind.name} option {name} takes a value, not a file or data reference"
            )
    plain = {
        name: value
        for name, value in parameters.items()
        if not (name in kind.data_parameters and is_reference(value))
    }
    # a reference stands in as a string where the option takes one (required options)
    types = {spec.name: spec.type for spec in parameter_specs(kind)}
    stand_ins = {
        name: "reference"
        for name in set(parameters) - set(plain)
        if "string" in types.get(name, "").split("|")
    }
    validate_function_parameters(kind.function, {**plain, **stand_ins})
    return {k: parameters[k] for k in sorted(parameters)}


def engine_options(kind: JobKind, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved job parameters as the engine function takes them (JSON lists -> tuples, ...)."""
    return validate_function_parameters(kind.function, parameters)


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
    summary = fn(*input_specs, output_path, **engine_options(kind, parameters), progress=progress)
    return dict(summary or {})


def submittable_kinds() -> list[dict[str, Any]]:
    """What the UI and the API list: each available kind with its inputs and options."""
    out = []
    for kind in JOB_KINDS.values():
        specs = parameter_specs(kind)
        options = {spec.name: spec.default for spec in specs}
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
                # the same descriptions as `python -m analysis_engine COMMAND --help`
                "options": [spec.as_dict() for spec in specs],
                "data_parameters": {
                    name: {
                        "accepts": list(spec.accepts),
                        "inner_path": spec.inner_path,
                        "help": spec.help,
                        "example": {"dataset": 1}
                        if not spec.inner_path
                        else {"result": 1, "path": "/dataset/in/the/file"},
                    }
                    for name, spec in kind.data_parameters.items()
                    if name in options
                },
                "available": True,
            }
        )
    return out
