"""Per depth region and per direction transport: the rows of the paper's Table 1."""

from __future__ import annotations

import math
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

__all__ = [
    "cap_box",
    "directional_table",
    "electrode_region_boxes",
    "segmentation_table",
    "streamed_region_boxes",
    "transport_row",
    "inscribed_rectangle",
    "split_regions",
]

#: a box is three half-open (start, stop) index ranges along (z, y, x)
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

#: names the paper uses for the two directions (thickness along z in its figures)
PAPER_PLANE = {"through-plane": "y-z", "in-plane": "x-y"}


def split_regions(length: int, n_regions: int) -> list[tuple[int, int]]:
    """Start/stop indices of ``n_regions`` equal slabs along an axis of ``length`` voxels.

    Region 1 starts at index 0 (next to the separator, docs/formats.md); sizes differ by at
    most one voxel.
    """
    if n_regions < 1:
        raise EngineInputError(f"number of regions must be at least 1, got {n_regions}")
    edges = np.linspace(0, length, n_regions + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def inscribed_rectangle(mask: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Largest axis-aligned rectangle of ``True`` pixels in a 2D mask (maximal-area).

    Row-by-row histogram of column heights with a monotonic stack, O(rows x cols).

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (rows, cols)

    Returns
    -------
    ((r0, r1), (c0, c1))
        Half-open row and column ranges; ties keep the first found (top-left most).

    Raises
    ------
    EngineInputError
        The mask is not 2D or holds no ``True`` pixel.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise EngineInputError(f"expected a 2D mask, got shape {m.shape}")
    rows, cols = m.shape
    heights = np.zeros(cols + 1, dtype=np.int64)  # sentinel 0 at the end
    best = (0, (0, 0), (0, 0))
    for r in range(rows):
        heights[:cols] = np.where(m[r], heights[:cols] + 1, 0)
        if not heights.any():
            continue
        h = heights.tolist()
        stack: list[int] = []
        for c in range(cols + 1):
            while stack and h[stack[-1]] >= h[c]:
                top = stack.pop()
                height = h[top]
                left = stack[-1] + 1 if stack else 0
                area = height * (c - left)
                if area > best[0]:
                    best = (area, (r - height + 1, r + 1), (left, c))
            stack.append(c)
    if best[0] == 0:
        raise EngineInputError("the electrode mask is empty: no box fits inside it")
    return best[1], best[2]


def electrode_region_boxes(
    electrode: np.ndarray, *, thickness_axis: int = 0, n_regions: int = 3
) -> list[Box]:
    """Largest box inside the electrode for each of its ``n_regions`` depth slabs.

    The regions are n equal slabs of the electrode's own extent along ``thickness_axis``
    (:func:`analysis_engine.tomo.segmentation.region_bounds`, the convention of the
    segmentation and of the XCT-Compton correlation). Within a slab, the lateral footprint is
    the set of columns that are electrode in *every* slice of the slab, and the box is the
    largest axis-aligned rectangle inscribed in it, so the box holds electrode only (the paper
    computes tortuosity on sub-volumes inside the electrode).

    Parameters
    ----------
    electrode : numpy.ndarray of bool, shape (z, y, x)
        Filled electrode mask (``/electrode_mask`` of a segmentation).
    thickness_axis : int
        Axis of the electrode thickness.
    n_regions : int
        Number of depth regions, region 1 at the low-index end.

    Returns
    -------
    list of Box
        Per region, half-open ``(start, stop)`` index ranges along (z, y, x).

    Raises
    ------
    EngineInputError
        Empty or non-3D mask, bad axis, a slab with no common electrode column.
    """
    from analysis_engine.tomo.segmentation import region_bounds

    elec = np.asarray(electrode).astype(bool, copy=False)
    if elec.ndim != 3:
        raise EngineInputError(f"electrode mask must be 3D (z, y, x), got shape {elec.shape}")
    if thickness_axis not in (0, 1, 2):
        raise EngineInputError(f"thickness axis must be 0, 1 or 2, got {thickness_axis!r}")
    bounds = region_bounds(elec, regions=n_regions, thickness_axis=thickness_axis)
    moved = np.moveaxis(elec, thickness_axis, 0)
    footprints = [moved[a:b].all(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return _boxes_from_footprints(bounds, footprints, thickness_axis)


def _boxes_from_footprints(
    bounds: np.ndarray, footprints: list[np.ndarray], thickness_axis: int
) -> list[Box]:
    """Per region, the slab ``bounds[r]:bounds[r+1]`` and the largest rectangle inscribed in
    its footprint (lateral axes in order)."""
    lateral = [a for a in range(3) if a != thickness_axis]
    boxes: list[Box] = []
    for region, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        footprint = footprints[region]
        if not footprint.any():
            raise EngineInputError(
                f"region {region + 1}: no lateral position is inside the electrode through "
                "the whole slab; check the electrode mask"
            )
        (r0, r1), (c0, c1) = inscribed_rectangle(footprint)
        box: list[tuple[int, int]] = [(0, 0)] * 3
        box[thickness_axis] = (int(a), int(b))
        box[lateral[0]] = (int(r0), int(r1))
        box[lateral[1]] = (int(c0), int(c1))
        boxes.append(tuple(box))  # type: ignore[arg-type]
    return boxes


def streamed_region_boxes(
    electrode: Any, *, thickness_axis: int = 0, n_regions: int = 3, block_voxels: int = 2**25
) -> list[Box]:
    """:func:`electrode_region_boxes` of a mask read in slabs of slices (an HDF5 dataset).

    Two passes over ``electrode[z0:z1]``: the electrode's extent along the thickness axis,
    then each region's footprint (the columns that are electrode through the whole slab);
    memory is one slab plus the 2D footprints. Same boxes as the whole-mask function.
    """
    from analysis_engine.tomo.segmentation import slab_bounds

    shape = tuple(int(s) for s in electrode.shape)
    if len(shape) != 3:
        raise EngineInputError(f"electrode mask must be 3D (z, y, x), got shape {shape}")
    if thickness_axis not in (0, 1, 2):
        raise EngineInputError(f"thickness axis must be 0, 1 or 2, got {thickness_axis!r}")
    step = max(1, int(block_voxels) // max(shape[1] * shape[2], 1))
    slabs = [(z, min(z + step, shape[0])) for z in range(0, shape[0], step)]
    others = tuple(i for i in range(3) if i != thickness_axis)
    occupied = np.zeros(shape[thickness_axis], dtype=bool)
    for z0, z1 in slabs:
        block = np.asarray(electrode[z0:z1]).astype(bool, copy=False)
        if thickness_axis == 0:
            occupied[z0:z1] |= block.any(axis=(1, 2))
        else:
            occupied |= block.any(axis=others)
    idx = np.flatnonzero(occupied)
    if idx.size == 0:
        raise EngineInputError("the electrode mask is empty")
    bounds = slab_bounds(int(idx[0]), int(idx[-1] - idx[0] + 1), int(n_regions))
    lateral_shape = tuple(shape[i] for i in others)
    footprints = [np.ones(lateral_shape, dtype=bool) for _ in range(int(n_regions))]
    for z0, z1 in slabs:
        block = np.asarray(electrode[z0:z1]).astype(bool, copy=False)
        for r, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if thickness_axis == 0:
                lo, hi = max(int(a), z0), min(int(b), z1)
                if lo < hi:
                    footprints[r] &= block[lo - z0 : hi - z0].all(axis=0)
            elif thickness_axis == 1:
                footprints[r][z0:z1] = block[:, a:b].all(axis=1)
            else:
                footprints[r][z0:z1] = block[:, :, a:b].all(axis=2)
    return _boxes_from_footprints(bounds, footprints, thickness_axis)


def cap_box(box: Box, thickness_axis: int, max_voxels: int | None) -> Box:
    """Shrink a box's two lateral extents about their centres to hold at most ``max_voxels``.

    The thickness extent is kept whole (through-plane transport crosses the whole region);
    the lateral sides shrink by the same factor, to no less than 3 voxels. ``None`` or 0
    returns the box unchanged.
    """
    sizes = [b - a for a, b in box]
    total = math.prod(sizes)
    if not max_voxels or total <= max_voxels:
        return box
    factor = math.sqrt(max_voxels / total)
    out = list(box)
    for axis in range(3):
        if axis == thickness_axis:
            continue
        a, b = box[axis]
        keep = max(min(int(sizes[axis] * factor), sizes[axis]), min(3, sizes[axis]))
        start = a + (sizes[axis] - keep) // 2
        out[axis] = (start, start + keep)
    return tuple(out)  # type: ignore[return-value]


def _check_box(box: Any, shape: tuple[int, ...]) -> Box:
    try:
        out = tuple((int(a), int(b)) for a, b in box)
    except (TypeError, ValueError):
        raise EngineInputError(
            f"box must be three (start, stop) pairs along (z, y, x), got {box!r}"
        ) from None
    if len(out) != 3 or any(not 0 <= a < b <= n for (a, b), n in zip(out, shape, strict=True)):
        raise EngineInputError(
            f"box {box!r} must be three (start, stop) pairs with 0 <= start < stop <= size "
            f"inside the volume of shape {tuple(shape)}"
        )
    return out  # type: ignore[return-value]


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
    electrode: np.ndarray | None = None,
    box: Any = None,
    max_region_voxels: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Porosity, tortuosity factor and directional diffusivity per depth region and direction.

    By default the whole volume is split into ``n_regions`` equal slabs along
    ``thickness_axis``. With ``electrode`` (the filled electrode mask of a segmentation) the
    regions are n equal slabs of the electrode's own extent and each is cropped to the largest
    box inscribed in the electrode (:func:`electrode_region_boxes`), as the paper computes
    tortuosity on sub-volumes inside the electrode; pores outside the electrode (the
    electrolyte around a coin-cell disc) would otherwise short-circuit or block the in-plane
    solve. With an explicit ``box`` the regions are n equal slabs of that box. Each slab is
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
    electrode : numpy.ndarray of bool, optional
        Filled electrode mask, same shape as ``volume``: crop each region to its inscribed box.
    box : sequence of 3 (start, stop) pairs, optional
        Explicit half-open box along (z, y, x) to analyse instead (exclusive with
        ``electrode``).
    max_region_voxels : int, optional
        Largest sub-volume solved per region: a bigger region box keeps its thickness and
        shrinks laterally about its centre (:func:`cap_box`). None or 0: no limit.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    list of dict
        One row per region and direction, region-major: ``region`` (1-based), ``direction``
        (``"through-plane"`` or ``"in-plane"``), ``plane`` (paper name, ``"y-z"``/``"x-y"``),
        ``axis``, ``box`` (the analysed sub-volume, three [start, stop) pairs along (z, y, x)),
        ``porosity`` (fraction), ``tau`` (``inf`` if not percolating),
        ``d_directional_cm2_s``, ``percolating``, ``d_eff_ratio``; with ``with_eis`` also
        ``tau_eis`` and ``r_ion_norm``.

    Raises
    ------
    EngineInputError
        Bad volume or axes, or slabs thinner than 3 voxels.
    """
    mask = pore_mask(volume, pore_value=pore_value)
    in_plane_axis = _check_axes(thickness_axis, in_plane_axis, d_electrolyte_cm2_s)
    if electrode is not None and box is not None:
        raise EngineInputError("give either an electrode mask or an explicit box, not both")
    if electrode is not None:
        electrode = np.asarray(electrode).astype(bool, copy=False)
        if electrode.shape != mask.shape:
            raise EngineInputError(
                f"electrode mask {electrode.shape} and pore volume {mask.shape} differ in shape"
            )
        mask = mask & electrode
        boxes = electrode_region_boxes(
            electrode, thickness_axis=thickness_axis, n_regions=n_regions
        )
    else:
        outer = (
            _check_box(box, mask.shape) if box is not None else tuple((0, n) for n in mask.shape)
        )
        boxes = _split_box(outer, thickness_axis, n_regions)
    boxes = _check_boxes(boxes, thickness_axis, in_plane_axis, n_regions, max_region_voxels)
    return _rows(
        lambda bx: mask[tuple(slice(a, b) for a, b in bx)],
        boxes,
        thickness_axis=thickness_axis,
        in_plane_axis=in_plane_axis,
        d_electrolyte_cm2_s=d_electrolyte_cm2_s,
        backend=backend,
        with_eis=with_eis,
        progress=progress,
    )


def segmentation_table(
    pores: Any,
    electrode: Any,
    *,
    thickness_axis: int = 0,
    in_plane_axis: int | None = None,
    n_regions: int = 3,
    d_electrolyte_cm2_s: float = D_ELECTROLYTE_CM2_S,
    backend: str = "native",
    with_eis: bool = False,
    box: Any = None,
    max_region_voxels: int | None = None,
    block_voxels: int = 2**25,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`directional_table` of a segmentation read from its two mask datasets.

    ``pores`` and ``electrode`` are sliceable 3D arrays (the ``/pore_mask`` and
    ``/electrode_mask`` datasets of a ``segment`` output, never read whole): the region boxes
    come from :func:`streamed_region_boxes` (or the explicit ``box``), and only each region's
    box of both masks is read. Same rows as ``directional_table(pores & electrode,
    electrode=electrode)`` (or ``box=box``); the parameters are the same.
    """
    shape = tuple(int(n) for n in pores.shape)
    if len(shape) != 3 or tuple(electrode.shape) != shape:
        raise EngineInputError(
            f"pore mask {shape} and electrode mask {tuple(electrode.shape)} must be the same "
            "3D shape"
        )
    in_plane_axis = _check_axes(thickness_axis, in_plane_axis, d_electrolyte_cm2_s)
    if box is not None:
        boxes = _split_box(_check_box(box, shape), thickness_axis, n_regions)
    else:
        boxes = streamed_region_boxes(
            electrode, thickness_axis=thickness_axis, n_regions=n_regions, block_voxels=block_voxels
        )
    boxes = _check_boxes(boxes, thickness_axis, in_plane_axis, n_regions, max_region_voxels)

    def read(bx: Box) -> np.ndarray:
        sl = tuple(slice(a, b) for a, b in bx)
        return np.asarray(pores[sl]).astype(bool) & np.asarray(electrode[sl]).astype(bool)

    return _rows(
        read,
        boxes,
        thickness_axis=thickness_axis,
        in_plane_axis=in_plane_axis,
        d_electrolyte_cm2_s=d_electrolyte_cm2_s,
        backend=backend,
        with_eis=with_eis,
        progress=progress,
    )


def _check_axes(thickness_axis: int, in_plane_axis: int | None, d_electrolyte_cm2_s: float) -> int:
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
    return in_plane_axis


def _split_box(outer: Box, thickness_axis: int, n_regions: int) -> list[Box]:
    t0, t1 = outer[thickness_axis]
    boxes = []
    for a, b in split_regions(t1 - t0, n_regions):
        region_box = list(outer)
        region_box[thickness_axis] = (t0 + a, t0 + b)
        boxes.append(tuple(region_box))
    return boxes  # type: ignore[return-value]


def _check_boxes(
    boxes: list[Box],
    thickness_axis: int,
    in_plane_axis: int,
    n_regions: int,
    max_region_voxels: int | None,
) -> list[Box]:
    thinnest = min(bx[thickness_axis][1] - bx[thickness_axis][0] for bx in boxes)
    if thinnest < MIN_VOXELS_ALONG_AXIS:
        raise EngineInputError(
            f"{n_regions} depth regions are {thinnest} voxels thin; at least "
            f"{MIN_VOXELS_ALONG_AXIS} needed"
        )
    narrowest = min(bx[in_plane_axis][1] - bx[in_plane_axis][0] for bx in boxes)
    if narrowest < MIN_VOXELS_ALONG_AXIS:
        raise EngineInputError(
            f"the analysed box is {narrowest} voxels wide along the in-plane axis; at least "
            f"{MIN_VOXELS_ALONG_AXIS} needed"
        )
    if max_region_voxels:
        boxes = [cap_box(bx, thickness_axis, max_region_voxels) for bx in boxes]
    return boxes


def _rows(
    read: Callable[[Box], np.ndarray],
    boxes: list[Box],
    *,
    thickness_axis: int,
    in_plane_axis: int,
    d_electrolyte_cm2_s: float,
    backend: str,
    with_eis: bool,
    progress: Callable[[float, str], None] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    jobs = [(r, d) for r in range(len(boxes)) for d in ("through-plane", "in-plane")]
    slab = None
    for k, (region, direction) in enumerate(jobs):
        region_box = boxes[region]
        if direction == "through-plane":
            slab = np.ascontiguousarray(read(region_box))
        axis = thickness_axis if direction == "through-plane" else in_plane_axis
        row = transport_row(
            slab,
            region=region + 1,
            direction=direction,
            axis=axis,
            box=region_box,
            d_electrolyte_cm2_s=d_electrolyte_cm2_s,
            backend=backend,
            with_eis=with_eis,
        )
        rows.append(row)
        if progress:
            progress((k + 1) / len(jobs), f"region {region + 1} {direction}: tau {row['tau']:.3g}")
    return rows


def transport_row(
    slab: np.ndarray,
    *,
    region: int,
    direction: str,
    axis: int,
    box: Box,
    d_electrolyte_cm2_s: float = D_ELECTROLYTE_CM2_S,
    backend: str = "native",
    with_eis: bool = False,
) -> dict[str, Any]:
    """One Table 1 row: porosity, tortuosity and D_directional of a boolean pore sub-volume."""
    porosity = float(slab.mean())
    row: dict[str, Any] = {
        "region": region,
        "direction": direction,
        "plane": PAPER_PLANE[direction],
        "axis": axis,
        "box": [[int(a), int(b)] for a, b in box],
        "porosity": porosity,
    }
    if not slab.any():
        row.update(tau=float("inf"), d_eff_ratio=0.0, percolating=False)
    else:
        res = tortuosity(
            slab, axis=axis, backend=backend, allow_non_percolating=True, return_fields=False
        )
        row.update(tau=res.tau, d_eff_ratio=res.d_eff_ratio, percolating=res.percolating)
    row["d_directional_cm2_s"] = directional_diffusivity(d_electrolyte_cm2_s, porosity, row["tau"])
    if with_eis:
        if row["percolating"]:
            spectrum = simulate_impedance(slab, axis=axis)
            fit = fit_transmission_line(
                spectrum.omega_over_omega_c, spectrum.z_norm, porosity=spectrum.porosity
            )
            row.update(tau_eis=fit.tau, r_ion_norm=fit.r_ion_norm)
        else:
            row.update(tau_eis=float("inf"), r_ion_norm=float("inf"))
    return row
