"""Commands ``tortuosity``, ``eis-sim`` and ``transport-table`` (files: docs/formats.md).

The ``run_*`` functions do the work and are what the platform's Celery tasks call; the CLI
handlers only translate arguments.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5, read_array, write_hdf5
from analysis_engine.parameters import Command, Option
from analysis_engine.transport.impedance import (
    D_ELECTROLYTE_CM2_S,
    directional_diffusivity,
    finite_diffusion_impedance,
    fit_transmission_line,
    simulate_impedance,
)
from analysis_engine.transport.steady import BACKENDS, tortuosity
from analysis_engine.transport.table import (
    _check_box,
    directional_table,
    electrode_region_boxes,
    segmentation_table,
    streamed_region_boxes,
)

__all__ = ["COMMANDS", "run_tortuosity", "run_eis_sim", "run_transport_table"]

ProgressFn = Callable[[float, str], None] | None
PathLike = str | os.PathLike
#: half-open (start, stop) voxel ranges along (z, y, x)
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

#: datasets of a ``segment`` output (docs/formats.md) that make a file a segmentation
SEGMENTATION_DATASETS = ("/pore_mask", "/electrode_mask")
CROPS = ("electrode", "none")


def read_segmentation(spec: PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Pore volume and, for a segmentation file, its electrode mask.

    ``spec`` naming a whole HDF5 file that holds ``/pore_mask`` and ``/electrode_mask`` (the
    ``segment`` output) returns both masks; any other spec (``file.h5:/dataset``, ``.npy``,
    TIFF) returns the volume and ``None``.
    """
    text = str(spec)
    if re.search(r"\.(h5|hdf5|hdf|nxs)$", text, re.IGNORECASE) and os.path.exists(text):
        with open_hdf5(text) as f:
            if all(name in f for name in SEGMENTATION_DATASETS):
                pores = np.asarray(f["/pore_mask"][()]).astype(bool)
                electrode = np.asarray(f["/electrode_mask"][()]).astype(bool)
                if pores.shape != electrode.shape:
                    raise EngineInputError(
                        f"{os.path.basename(text)}: /pore_mask {pores.shape} and "
                        f"/electrode_mask {electrode.shape} differ in shape"
                    )
                return pores & electrode, electrode
    return read_array(spec), None


def _check_crop(crop: str) -> None:
    if crop not in CROPS:
        raise EngineInputError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")


def _segmentation_file(spec: PathLike) -> bool:
    """Whether ``spec`` names a whole ``segment`` output (``/pore_mask`` + ``/electrode_mask``)."""
    text = str(spec)
    if not (re.search(r"\.(h5|hdf5|hdf|nxs)$", text, re.IGNORECASE) and os.path.exists(text)):
        return False
    with open_hdf5(text) as f:
        return all(name in f for name in SEGMENTATION_DATASETS)


def _cropped_volume(
    volume_spec: PathLike, *, crop: str, box: Any
) -> tuple[np.ndarray, list[list[int]] | None]:
    """The volume to solve: a segmentation cropped to the box inscribed in its electrode
    (``crop="electrode"``), an explicit ``box``, or the whole volume. Returns the box used.

    From a segmentation file only the box is read (the electrode mask is scanned in slabs of
    slices to find it)."""
    _check_crop(crop)
    if _segmentation_file(volume_spec) and (box is not None or crop == "electrode"):
        with open_hdf5(volume_spec) as f:
            pores, electrode = f["/pore_mask"], f["/electrode_mask"]
            if pores.shape != electrode.shape:
                raise EngineInputError(
                    f"{os.path.basename(str(volume_spec))}: /pore_mask {pores.shape} and "
                    f"/electrode_mask {electrode.shape} differ in shape"
                )
            if box is not None:
                used = _check_box(box, pores.shape)
            else:
                used = streamed_region_boxes(electrode, thickness_axis=0, n_regions=1)[0]
            sl = tuple(slice(a, b) for a, b in used)
            sub = np.asarray(pores[sl]).astype(bool) & np.asarray(electrode[sl]).astype(bool)
        return np.ascontiguousarray(sub), [[int(a), int(b)] for a, b in used]
    volume, electrode = read_segmentation(volume_spec)
    if box is not None:
        used = _check_box(box, volume.shape)
    elif electrode is not None and crop == "electrode":
        used = electrode_region_boxes(electrode, thickness_axis=0, n_regions=1)[0]
    else:
        return volume, None
    sub = volume[tuple(slice(a, b) for a, b in used)]
    return np.ascontiguousarray(sub), [[int(a), int(b)] for a, b in used]


def run_tortuosity(
    volume_spec: PathLike,
    output_path: PathLike,
    *,
    axis: int,
    backend: str = "native",
    pore_value: float | None = None,
    rtol: float = 1e-5,
    max_iter: int = 20_000,
    crop: str = "electrode",
    box: Box | None = None,
    progress: ProgressFn = None,
) -> dict[str, Any]:
    """Steady-state tortuosity of a binary volume; writes concentration and flux fields.

    Parameters
    ----------
    volume_spec : str or path
        ``file.h5:/dataset``, ``file.npy`` or TIFF; pore = nonzero (or ``== pore_value``);
        or a whole ``segment`` output file (``/pore_mask`` + ``/electrode_mask``).
    output_path : str or path
        HDF5 written atomically: ``/concentration`` (volume, float32, NaN outside the
        percolating cluster), ``/flux`` (3, *volume) float32 components along (z, y, x) in
        units of ``D dC / L``, ``/flux_magnitude``, ``/plane_flux`` (L + 1,).
    axis : int
        Transport axis (0 z, 1 y, 2 x); C = 1 on index 0.
    backend : {"native", "taufactor"}
    pore_value, rtol, max_iter
        See :func:`analysis_engine.transport.steady.tortuosity`.
    crop : {"electrode", "none"}
        For a segmentation file: solve in the largest box inscribed in the electrode
        (default, the paper's sub-volume inside the electrode) or on the whole field of view.
    box : three (start, stop) pairs, optional
        Explicit half-open sub-volume along (z, y, x); overrides ``crop``.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``tau``, ``porosity``, ``d_eff_ratio``, ``axis``, ``backend``,
        ``percolating_porosity``, ``iterations``, ``residual``, ``shape``, ``box`` (the
        analysed sub-volume, or None for the whole volume).
    """
    volume, used_box = _cropped_volume(volume_spec, crop=crop, box=box)
    res = tortuosity(
        volume,
        axis=axis,
        backend=backend,
        pore_value=pore_value,
        rtol=rtol,
        max_iter=max_iter,
        progress=progress,
    )
    summary = {
        "tau": res.tau,
        "porosity": res.porosity,
        "d_eff_ratio": res.d_eff_ratio,
        "axis": res.axis,
        "backend": res.backend,
        "percolating_porosity": res.percolating_porosity,
        "iterations": res.iterations,
        "residual": res.residual,
        "shape": list(volume.shape),
        "box": used_box,
    }
    write_hdf5(
        output_path,
        {
            "/concentration": res.concentration,
            "/flux": res.flux,
            "/flux_magnitude": np.sqrt(np.sum(res.flux.astype(np.float64) ** 2, axis=0)).astype(
                np.float32
            ),
            "/plane_flux": res.plane_flux,
        },
        attrs={"/": _attrs(summary), "/flux": {"units": "D dC / L", "components": ["z", "y", "x"]}},
    )
    return summary


def run_eis_sim(
    volume_spec: PathLike,
    output_path: PathLike,
    *,
    axis: int,
    d_electrolyte_cm2_s: float = D_ELECTROLYTE_CM2_S,
    voxel_size_um: float = 7.91,
    n_frequencies: int = 25,
    omega_range: tuple[float, float] = (1e-2, 1e3),
    fit_window: float = 4.0,
    pore_value: float | None = None,
    crop: str = "electrode",
    box: Box | None = None,
    progress: ProgressFn = None,
) -> dict[str, Any]:
    """Simulated EIS (Eqs. 1-2), uniform TLM fit (Eq. 3) and D_directional (Eq. 4).

    Parameters
    ----------
    volume_spec : str or path
        Binary volume or segmentation file (see :func:`run_tortuosity`).
    output_path : str or path
        HDF5 with ``/impedance/frequency`` (Hz), ``/impedance/omega_over_omega_c``,
        ``/impedance/z_real``, ``/impedance/z_imag`` (normalised, Eq. 2) and the fitted line
        ``/impedance/fit_z_real``, ``/impedance/fit_z_imag``.
    axis : int
        Transport axis; the stimulus is applied on index 0.
    d_electrolyte_cm2_s : float
        D_e (cm^2/s), sets omega_c = D_e / L^2 and D_directional.
    voxel_size_um : float
        Voxel edge (um), for L in physical units (frequencies in Hz only).
    n_frequencies, omega_range
        Log-spaced frequencies over ``omega_range`` (units of omega_c).
    fit_window : float
        Fit the frequencies with ``omega theta / omega_c <= fit_window`` (theta the fitted
        time constant), see :func:`fit_transmission_line`.
    pore_value : float, optional
    crop, box
        Sub-volume of a segmentation, see :func:`run_tortuosity`.
    progress : callable, optional

    Returns
    -------
    dict
        ``tau`` (from the TLM fit), ``tau_steady``, ``porosity``, ``d_directional_cm2_s``,
        ``r_ion_norm``, ``theta``, ``fit_rms_relative_error``, ``omega_c_rad_s``, ``axis``,
        ``box``.
    """
    if not d_electrolyte_cm2_s > 0 or not voxel_size_um > 0:
        raise EngineInputError("electrolyte diffusivity and voxel size must be > 0")
    lo, hi = omega_range
    if not 0 < lo < hi:
        raise EngineInputError(f"frequency range must satisfy 0 < low < high, got {omega_range}")
    volume, used_box = _cropped_volume(volume_spec, crop=crop, box=box)

    def sub(start: float, span: float) -> ProgressFn:
        if progress is None:
            return None
        return lambda f, m: progress(start + span * f, m)

    steady = tortuosity(
        volume, axis=axis, pore_value=pore_value, return_fields=False, progress=sub(0.0, 0.1)
    )
    spectrum = simulate_impedance(
        volume,
        axis=axis,
        n_frequencies=n_frequencies,
        omega_range=omega_range,
        pore_value=pore_value,
        progress=sub(0.1, 0.85),
    )
    fit = fit_transmission_line(
        spectrum.omega_over_omega_c,
        spectrum.z_norm,
        porosity=spectrum.porosity,
        window=fit_window,
    )
    length_cm = spectrum.length_voxels * voxel_size_um * 1e-4
    omega_c = d_electrolyte_cm2_s / length_cm**2
    omega = spectrum.omega_over_omega_c * omega_c
    fitted = finite_diffusion_impedance(
        spectrum.omega_over_omega_c, r_norm=fit.r_ion_norm, theta=fit.theta
    )
    summary = {
        "tau": fit.tau,
        "tau_steady": steady.tau,
        "porosity": spectrum.porosity,
        "d_directional_cm2_s": directional_diffusivity(
            d_electrolyte_cm2_s, spectrum.porosity, fit.tau
        ),
        "r_ion_norm": fit.r_ion_norm,
        "theta": fit.theta,
        "fit_rms_relative_error": fit.rms_relative_error,
        "frequencies_fitted": fit.frequencies_fitted,
        "omega_c_rad_s": omega_c,
        "axis": spectrum.axis,
        "frequencies": int(omega.size),
        "box": used_box,
    }
    write_hdf5(
        output_path,
        {
            "/impedance/frequency": omega / (2 * math.pi),
            "/impedance/omega_rad_s": omega,
            "/impedance/omega_over_omega_c": spectrum.omega_over_omega_c,
            "/impedance/z_real": spectrum.z_norm.real,
            "/impedance/z_imag": spectrum.z_norm.imag,
            "/impedance/fit_z_real": fitted.real,
            "/impedance/fit_z_imag": fitted.imag,
        },
        attrs={
            "/": _attrs(summary),
            "/impedance/frequency": {"units": "Hz"},
            "/impedance/z_real": {"units": "normalised, Z A D / L (Eq. 2)"},
        },
    )
    return summary


def run_transport_table(
    volume_spec: PathLike,
    output_path: PathLike,
    *,
    thickness_axis: int = 0,
    in_plane_axis: int | None = None,
    regions: int = 3,
    d_electrolyte_cm2_s: float = D_ELECTROLYTE_CM2_S,
    backend: str = "native",
    with_eis: bool = False,
    pore_value: float | None = None,
    crop: str = "electrode",
    box: Box | None = None,
    max_region_voxels: int = 8_000_000,
    progress: ProgressFn = None,
) -> dict[str, Any]:
    """Table 1 rows (porosity, tau, D_directional per depth region and direction).

    Writes ``/porosity`` (n,), ``/tau_through_plane``, ``/tau_in_plane``,
    ``/d_through_plane_cm2_s``, ``/d_in_plane_cm2_s`` (n,), ``/boxes`` (n, 3, 2) and the rows
    as JSON in the root attribute ``rows``. Parameters as
    :func:`analysis_engine.transport.table.directional_table`, plus:

    Parameters
    ----------
    volume_spec : str or path
        A whole ``segment`` output file (``/pore_mask`` + ``/electrode_mask``), or a binary
        volume (``file.h5:/dataset``, ``.npy``, TIFF) analysed as a whole.
    output_path : str or path
        HDF5 file written atomically (datasets above).
    regions : int
        Number of equal depth slabs along the thickness axis (region 1 at index 0).
    crop : {"electrode", "none"}
        For a segmentation file: regions are n equal slabs of the electrode's own extent along
        the thickness, each cropped to the largest box inscribed in the electrode (default; the
        paper's sub-volumes inside the electrode), or ``"none"`` for the whole field of view.
    box : three (start, stop) pairs, optional
        Explicit half-open sub-volume along (z, y, x), split into the regions; overrides
        ``crop``.
    max_region_voxels : int
        Largest sub-volume solved per region (default 8 million voxels, about 0.5 GB for the
        solver): a bigger region box keeps its thickness and shrinks laterally about its
        centre; 0 for no limit. A segmentation file is read only box by box, so with this
        limit memory stays bounded whatever the volume.

    Returns
    -------
    dict
        ``rows`` (list of dicts, see ``directional_table``; each row has its ``box``),
        ``regions``, ``thickness_axis``, ``in_plane_axis``, ``crop`` (``"electrode"``,
        ``"box"`` or ``"none"``), ``boxes`` (per region).
    """
    _check_crop(crop)
    options = dict(
        thickness_axis=thickness_axis,
        in_plane_axis=in_plane_axis,
        n_regions=regions,
        d_electrolyte_cm2_s=d_electrolyte_cm2_s,
        backend=backend,
        with_eis=with_eis,
        box=box,
        max_region_voxels=max_region_voxels,
        progress=progress,
    )
    if _segmentation_file(volume_spec) and (box is not None or crop == "electrode"):
        # Only the region boxes are read from the two masks.
        used = "box" if box is not None else "electrode"
        with open_hdf5(volume_spec) as f:
            rows = segmentation_table(f["/pore_mask"], f["/electrode_mask"], **options)
    else:
        volume, electrode = read_segmentation(volume_spec)
        if box is not None:
            electrode, used = None, "box"
        elif electrode is not None and crop == "electrode":
            used = "electrode"
        else:
            electrode, used = None, "none"
        rows = directional_table(volume, pore_value=pore_value, electrode=electrode, **options)
    through = [r for r in rows if r["direction"] == "through-plane"]
    inplane = [r for r in rows if r["direction"] == "in-plane"]
    summary = {
        "rows": rows,
        "regions": regions,
        "thickness_axis": thickness_axis,
        "in_plane_axis": inplane[0]["axis"],
        "crop": used,
        "boxes": [r["box"] for r in through],
    }
    write_hdf5(
        output_path,
        {
            "/porosity": [r["porosity"] for r in through],
            "/tau_through_plane": [r["tau"] for r in through],
            "/tau_in_plane": [r["tau"] for r in inplane],
            "/d_through_plane_cm2_s": [r["d_directional_cm2_s"] for r in through],
            "/d_in_plane_cm2_s": [r["d_directional_cm2_s"] for r in inplane],
            "/boxes": np.asarray([r["box"] for r in through], dtype=np.int64),
        },
        attrs={
            "/": {
                "rows": json.dumps(_finite(rows)),
                "d_electrolyte_cm2_s": d_electrolyte_cm2_s,
                "crop": used,
            }
        },
    )
    return summary


def _attrs(summary: dict[str, Any]) -> dict[str, Any]:
    """HDF5-attribute-safe summary: the box (or its absence) as JSON text."""
    return {**summary, "box": json.dumps(summary.get("box"))}


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# command line: generated from the signatures above (analysis_engine.parameters)

_CROP = {"crop": Option(choices=CROPS)}
_BACKEND = {"backend": Option(choices=BACKENDS)}
#: ``--d-electrolyte`` is the documented short name of ``--d-electrolyte-cm2-s``
_ELECTROLYTE = {"d_electrolyte_cm2_s": Option(aliases=("--d-electrolyte",))}

COMMANDS = (
    Command("tortuosity", run_tortuosity, inputs=("volume_spec",), options=_CROP | _BACKEND),
    Command("eis-sim", run_eis_sim, inputs=("volume_spec",), options=_CROP | _ELECTROLYTE),
    Command(
        "transport-table",
        run_transport_table,
        inputs=("volume_spec",),
        options=_CROP | _BACKEND | _ELECTROLYTE,
    ),
)
