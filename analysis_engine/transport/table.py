"""Per depth region and per direction transport: the rows of the paper's Table 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.transport._volume import MIN_VOXELS_ALONG_AXIS, pore_mask
from analysis_engine.transport.impedance import (
    D_ELECTROLYTE_CM2_S,
    directional_diffusivity,
    fit_transmission_line,
    simulate_impedance,
)
from analysis_engine.transport.steady import tortuosity

__all__ = ["directional_table", "split_regions"]

#: names the paper uses for the two directions (thickness along z in its figures)
PAPER_PLANE = {"through-plane": "y-z", "in-plane": "x-y"}


def split_regions(length: int, n_regions: int) -> list[tuple[int, int]]:
    """Start/stop indices of ``n_regions`` equal slabs along an axis of ``length`` voxels.

    Region 1 starts at index 0 (next to the separator in CONTRACTS.md); sizes differ by at
    most one voxel.
    """
    if n_regions < 1:
        raise EngineInputError(f"number of regions must be at least 1, got {n_regions}")
    edges = np.linspace(0, length, n_regions + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def directional_table(
    volume: np.ndarray,
    *,
    thickness_axis: int = 0,
    in_plane_axis: int | None = None,
    n_regions: int = 3,
    d_electrolyte_cm2_s: float = D_ELECTROLYTE_CM2_S,
    backend: str = "native",
    with_eis: bool = False,
    pore_value: float | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Porosity, tortuosity factor and directional diffusivity per depth region and direction.

    The volume is split into ``n_regions`` equal slabs along ``thickness_axis``; each slab is
    solved through-plane (along the thickness, the paper's y-z direction) and in-plane (along
    ``in_plane_axis``, the paper's x-y direction). ``D_directional = D_e eps / tau`` (Eq. 4).

    Parameters
    ----------
    volume : numpy.ndarray
        3D (z, y, x) binary volume of the electrode, pore = nonzero (or ``== pore_value``).
    thickness_axis : int
        Axis along the electrode thickness (default 0, z).
    in_plane_axis : int, optional
        In-plane transport axis; default the last axis other than ``thickness_axis``.
    n_regions : int
        Number of equal depth slabs (region 1 at index 0).
    d_electrolyte_cm2_s : float
        Intrinsic electrolyte diffusivity D_e (cm^2/s); 1.39e-7 reproduces Table 1.
    backend : {"native", "taufactor"}
        Steady-state solver.
    with_eis : bool
        Also simulate the impedance and fit the transmission line (adds ``tau_eis``).
    pore_value : float, optional
        Pore label of a non-binary volume.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    list of dict
        One row per region and direction, region-major: ``region`` (1-based), ``direction``
        (``"through-plane"`` or ``"in-plane"``), ``plane`` (paper name, ``"y-z"``/``"x-y"``),
        ``axis``, ``porosity`` (fraction), ``tau`` (``inf`` if not percolating),
        ``d_directional_cm2_s``, ``percolating``, ``d_eff_ratio``; with ``with_eis`` also
        ``tau_eis`` and ``r_ion_norm``.

    Raises
    ------
    EngineInputError
        Bad volume or axes, or slabs thinner than 3 voxels.
    """
    mask = pore_mask(volume, pore_value=pore_value)
    if thickness_axis not in (0, 1, 2):
        raise EngineInputError(f"thickness axis must be 0, 1 or 2, got {thickness_axis!r}")
    lateral = [a for a in range(3) if a != thickness_axis]
    if in_plane_axis is None:
        in_plane_axis = lateral[-1]
    if in_plane_axis not in lateral:
        raise EngineInputError(
            f"in-plane axis must be one of {lateral} (not the thickness axis {thickness_axis}), "
            f"got {in_plane_axis!r}"
        )
    if not d_electrolyte_cm2_s > 0:
        raise EngineInputError(f"electrolyte diffusivity must be > 0, got {d_electrolyte_cm2_s}")
    slabs = split_regions(mask.shape[thickness_axis], n_regions)
    thinnest = min(b - a for a, b in slabs)
    if thinnest < MIN_VOXELS_ALONG_AXIS:
        raise EngineInputError(
            f"{n_regions} regions of a volume {mask.shape[thickness_axis]} voxels thick are "
            f"{thinnest} voxels thin; at least {MIN_VOXELS_ALONG_AXIS} needed"
        )
    rows: list[dict[str, Any]] = []
    jobs = [(r, d) for r in range(n_regions) for d in ("through-plane", "in-plane")]
    for k, (region, direction) in enumerate(jobs):
        a, b = slabs[region]
        index = [slice(None)] * 3
        index[thickness_axis] = slice(a, b)
        slab = mask[tuple(index)]
        axis = thickness_axis if direction == "through-plane" else in_plane_axis
        porosity = float(slab.mean())
        row: dict[str, Any] = {
            "region": region + 1,
            "direction": direction,
            "plane": PAPER_PLANE[direction],
            "axis": axis,
            "porosity": porosity,
        }
        if not slab.any():
            row.update(tau=float("inf"), d_eff_ratio=0.0, percolating=False)
        else:
            res = tortuosity(
                slab, axis=axis, backend=backend, allow_non_percolating=True, return_fields=False
            )
            row.update(tau=res.tau, d_eff_ratio=res.d_eff_ratio, percolating=res.percolating)
        row["d_directional_cm2_s"] = directional_diffusivity(
            d_electrolyte_cm2_s, porosity, row["tau"]
        )
        if with_eis:
            if row["percolating"]:
                spectrum = simulate_impedance(slab, axis=axis)
                fit = fit_transmission_line(
                    spectrum.omega_over_omega_c, spectrum.z_norm, porosity=spectrum.porosity
                )
                row.update(tau_eis=fit.tau, r_ion_norm=fit.r_ion_norm)
            else:
                row.update(tau_eis=float("inf"), r_ion_norm=float("inf"))
        rows.append(row)
        if progress:
            progress((k + 1) / len(jobs), f"region {region + 1} {direction}: tau {row['tau']:.3g}")
    return rows
