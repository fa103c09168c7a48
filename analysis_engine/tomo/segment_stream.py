"""The segmentation chain in blocks of voxels: memory bounded by the block, not the volume.

:func:`segment_streamed` gives the result of
:func:`analysis_engine.tomo.segmentation.segment_electrode` (same masks, same thresholds,
same porosity; tests/engine/test_segment_stream.py compares them voxel for voxel) while
holding only a block of voxels at a time. The volume is read from anything sliced like an
array (an ``h5py.Dataset`` of a reconstruction, a numpy array) and the masks are written into
two array-like sinks (``h5py`` datasets of the output file).

How each step of the chain stays exact when cut into blocks:

- the median filter and the Gaussian / unsharp mask of the pore binarisation are local: a
  block is read with a halo as wide as the filters reach (clipped where the whole-volume
  filter meets its own edge), and only its core is kept;
- the thresholds are global: the whole-volume chain computes Otsu on every ``step``-th voxel
  of the (filtered) volume, or of the electrode voxels in C order; the blocks pick exactly
  those voxels by their global rank, so the sample and hence the threshold are the same;
- the electrode mask's closing, opening, largest component and hole filling run on the
  volume block-averaged by ``mask_downsample`` (``k``), which is ``k**3`` times smaller and
  held whole (k = 1 holds the candidate mask at full resolution: only for volumes that fit);
- the full-resolution refinement of the coarse surface labels the dark band voxels and drops
  those connected to the outside: each block is labelled on its own, labels are joined where
  they touch across block faces (a graph of label pairs, its connected components), so the
  result does not depend on where the blocks are cut;
- porosity per region, lateral porosity and the volume profile are sums, accumulated block by
  block.

Scratch (the median-filtered volume and the labels, when needed) goes to an HDF5 file in a
temporary directory under ``scratch_dir`` (default: ``CORRELI_SCRATCH_DIR``, else the system
temporary directory), removed afterwards.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis_engine.errors import EngineInputError
from analysis_engine.tomo import segmentation as seg
from analysis_engine.tomo.segmentation import (
    RegionPorosity,
    SegmentationMeasures,
    Threshold,
    VolumeProfile,
    _axis,
    _mask_morphology,
    _pore_threshold,
    mask_threshold,
    slab_bounds,
    unsharp_mask,
)

__all__ = ["StreamedSegmentation", "segment_streamed", "scratch_root", "DEFAULT_BLOCK_VOXELS"]

#: voxels of one block including its halo (float32: 128 MiB)
DEFAULT_BLOCK_VOXELS = 32 * 1024 * 1024

Progress = Callable[[float, str], None] | None


def scratch_root(scratch_dir: str | os.PathLike | None = None) -> Path:
    """Directory for scratch files: ``scratch_dir``, ``CORRELI_SCRATCH_DIR`` or the system's."""
    root = scratch_dir or os.environ.get("CORRELI_SCRATCH_DIR") or tempfile.gettempdir()
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, eq=False, kw_only=True)
class StreamedSegmentation(SegmentationMeasures):
    """What :func:`segment_streamed` measured (:class:`SegmentationMeasures`); the masks went to
    the sinks. Adds the volume's ``shape`` and its ``electrode_voxels``."""

    shape: tuple[int, int, int]
    electrode_voxels: int


@dataclass(frozen=True)
class _Block:
    """Core ``[z0, z1) x [y0, y1)`` (all x) and the halo-padded read ``[hz0, hz1) x [hy0, hy1)``."""

    z0: int
    z1: int
    y0: int
    y1: int
    hz0: int
    hz1: int
    hy0: int
    hy1: int

    @property
    def core(self) -> tuple[slice, slice]:
        """The core inside the padded block."""
        return slice(self.z0 - self.hz0, self.z1 - self.hz0), slice(
            self.y0 - self.hy0, self.y1 - self.hy0
        )


def _blocks(
    zr: tuple[int, int],
    yr: tuple[int, int],
    width: int,
    halo: int,
    budget: int,
    align: int = 1,
) -> Iterator[_Block]:
    """Tiles of ``zr x yr`` (whole rows of ``width``) whose padded size fits ``budget`` voxels.

    Tile edges fall on multiples of ``align`` (relative to the range start); the halo is
    clipped to the ranges.
    """
    nz, ny = zr[1] - zr[0], yr[1] - yr[0]
    bz, by = nz, ny
    if (nz + 2 * halo) * (ny + 2 * halo) * width > budget:
        side = max(int(math.sqrt(budget / width)) - 2 * halo, 1)
        bz = min(nz, side)
        by = min(ny, max(budget // ((bz + 2 * halo) * width) - 2 * halo, 1))
    if align > 1:
        bz = max(align, bz // align * align)
        by = max(align, by // align * align)
    for z0 in range(zr[0], zr[1], bz):
        z1 = min(z0 + bz, zr[1])
        for y0 in range(yr[0], yr[1], by):
            y1 = min(y0 + by, yr[1])
            yield _Block(
                z0,
                z1,
                y0,
                y1,
                max(z0 - halo, zr[0]),
                min(z1 + halo, zr[1]),
                max(y0 - halo, yr[0]),
                min(y1 + halo, yr[1]),
            )


def _pick(values: np.ndarray, counts: np.ndarray, starts: np.ndarray, step: int) -> np.ndarray:
    """Elements of global rank ``0 mod step`` from rows laid end to end in ``values``.

    Row ``i`` holds ``counts[i]`` consecutive elements of ``values`` whose global ranks start
    at ``starts[i]``.
    """
    if step == 1:
        return values
    first = (-starts) % step
    n = np.maximum(0, (counts - first + step - 1) // step)
    total = int(n.sum())
    if total == 0:
        return values[:0]
    local = np.cumsum(counts) - counts  # offset of each row in ``values``
    row = np.repeat(np.arange(counts.size), n)
    k = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    return values[local[row] + first[row] + k * step]


def _step(total: int) -> int:
    return 1 if total <= seg._THRESHOLD_SAMPLE else total // seg._THRESHOLD_SAMPLE + 1


class _Source:
    """Reads float32 blocks of the volume with non-finite voxels set to ``fill``."""

    def __init__(self, data: Any, fill: float | None = None) -> None:
        self.data = data
        self.fill = fill

    def read(
        self, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int] | None = None
    ) -> np.ndarray:
        xs = slice(None) if x is None else slice(x[0], x[1])
        block = np.asarray(self.data[z[0] : z[1], y[0] : y[1], xs], dtype=np.float32)
        if self.fill is not None:
            bad = ~np.isfinite(block)
            if bad.any():
                block[bad] = self.fill
        return block


def _finite_range(data: Any, shape: tuple[int, int, int], budget: int) -> float | None:
    """Minimum finite value when some voxel is not finite (None when all are finite)."""
    lowest, nonfinite, finite_any = math.inf, False, False
    for b in _blocks((0, shape[0]), (0, shape[1]), shape[2], 0, budget):
        block = np.asarray(data[b.z0 : b.z1, b.y0 : b.y1], dtype=np.float32)
        ok = np.isfinite(block)
        if ok.all():
            finite_any = True
            lowest = min(lowest, float(block.min()))
            continue
        nonfinite = True
        if ok.any():
            finite_any = True
            lowest = min(lowest, float(block[ok].min()))
    if not finite_any:
        raise EngineInputError("the volume holds no finite values")
    return lowest if nonfinite else None


def segment_streamed(
    volume: Any,
    electrode_sink: Any,
    pore_sink: Any,
    *,
    regions: int = 3,
    thickness_axis: int = 0,
    median_size: int = 3,
    mask_threshold_method: Threshold = "otsu",
    fill_radius: float = 11.0,
    opening_radius: float = 11.0,
    mask_downsample: int = 1,
    pore_smoothing: float | str = 0.7,
    unsharp_radius: float = 2.0,
    unsharp_amount: float = 1.0,
    pore_threshold: str | float = "otsu",
    current_collector: str = "end",
    block_voxels: int = DEFAULT_BLOCK_VOXELS,
    scratch_dir: str | os.PathLike | None = None,
    progress: Progress = None,
) -> StreamedSegmentation:
    """:func:`~analysis_engine.tomo.segmentation.segment_electrode` in blocks of voxels.

    Parameters
    ----------
    volume : array-like, shape (z, y, x)
        Sliceable volume (``h5py.Dataset``, numpy array); read ``volume[z0:z1, y0:y1]``.
    electrode_sink, pore_sink : array-like, volume shape
        Written ``sink[z0:z1, y0:y1] = uint8 block``; every voxel of the electrode sink is
        written, the pore sink only inside the electrode's box (it must start as zeros:
        numpy zeros or an HDF5 dataset, whose fill value is 0).
    block_voxels : int
        Voxels of one block including its halo; peak memory is a small multiple of this in
        float32, plus the coarse electrode mask (``volume / mask_downsample**3`` voxels) and
        the lateral porosity maps.
    scratch_dir : path, optional
        Where the median-filtered volume and the labels are kept meanwhile (see
        :func:`scratch_root`).
    Other parameters
        As :func:`~analysis_engine.tomo.segmentation.segment_electrode`
        (``mask_threshold_method`` is its ``mask_threshold``).

    Returns
    -------
    StreamedSegmentation
    """
    report = progress or (lambda fraction, message: None)
    shape = tuple(int(s) for s in getattr(volume, "shape", ()))
    if len(shape) != 3 or min(shape) < 3:
        raise EngineInputError(
            f"segmentation needs a 3D volume (z, y, x) at least 3 voxels on each side, got "
            f"shape {shape}"
        )
    dtype = np.dtype(volume.dtype)
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise EngineInputError(f"the volume must hold real numbers, got dtype {dtype}")
    axis = _axis(thickness_axis, 3)
    if int(regions) < 1:
        raise EngineInputError(f"regions must be at least 1, got {regions}")
    k = int(mask_downsample)
    if k < 1:
        raise EngineInputError(f"downsample must be a positive integer, got {mask_downsample}")
    if isinstance(pore_smoothing, str) and pore_smoothing != "median":
        raise EngineInputError(
            f"pore_smoothing must be a number of voxels or 'median', got {pore_smoothing!r}"
        )
    if current_collector not in {"end", "start"}:
        raise EngineInputError(
            f"current_collector must be 'end' or 'start', got {current_collector!r}"
        )
    smoothing = 0.0 if isinstance(pore_smoothing, str) else float(pore_smoothing)
    if smoothing < 0 or unsharp_radius < 0:
        raise EngineInputError("smoothing and unsharp_radius must be zero or positive")
    budget = max(int(block_voxels), 64)
    Z, H, W = shape
    whole_z, whole_y = (0, Z), (0, H)

    report(0.0, "finite range")
    raw = _Source(volume, _finite_range(volume, shape, budget))

    with tempfile.TemporaryDirectory(prefix="segment-", dir=scratch_root(scratch_dir)) as tmp:
        scratch = h5py.File(Path(tmp) / "scratch.h5", "w")
        try:
            # 1. median filter (to scratch) and the mask threshold's sample
            step = _step(Z * H * W)
            samples = []
            filtered: _Source | Any = raw
            m = int(median_size)
            if m > 1:
                report(0.05, f"median filter {m}^3")
                ds = scratch.create_dataset(
                    "filtered", shape, dtype=np.float32, chunks=(1, min(H, 256), W)
                )
                for b in _blocks(whole_z, whole_y, W, m // 2, budget):
                    block = raw.read((b.hz0, b.hz1), (b.hy0, b.hy1))
                    out = ndi.median_filter(block, size=m, mode="nearest")[b.core]
                    ds[b.z0 : b.z1, b.y0 : b.y1] = out
                    samples.append(_row_sample(out, b, H, W, step))
                filtered = _Source(ds)
            else:
                for b in _blocks(whole_z, whole_y, W, 0, budget):
                    samples.append(_row_sample(raw.read((b.z0, b.z1), (b.y0, b.y1)), b, H, W, step))
            band = mask_threshold(np.concatenate(samples), mask_threshold_method)
            del samples

            # 2. candidates, block-averaged to the coarse grid
            report(0.3, "electrode mask (coarse morphology)")
            coarse_shape = tuple(-(-s // k) for s in shape)
            work = np.zeros(coarse_shape, dtype=bool)
            any_candidate = False
            for b in _blocks(whole_z, whole_y, W, 0, budget, align=k):
                cand = _candidates(filtered, b, band)
                any_candidate = any_candidate or bool(cand.any())
                if k == 1:
                    work[b.z0 : b.z1, b.y0 : b.y1] = cand
                    continue
                pad = [(0, (-s) % k) for s in cand.shape]
                padded = np.pad(cand, pad, mode="edge").astype(np.float32)
                ps = padded.shape
                blocks = padded.reshape(ps[0] // k, k, ps[1] // k, k, ps[2] // k, k)
                work[b.z0 // k : -(-b.z1 // k), b.y0 // k : -(-b.y1 // k)] = (
                    blocks.mean(axis=(1, 3, 5)) >= 0.5
                )
            if not any_candidate:
                raise EngineInputError(
                    f"no voxel lies in the electrode grey-level band {band}: check the mask "
                    "threshold"
                )
            coarse = _mask_morphology(work, k, fill_radius, opening_radius, True)
            del work

            # 3. full-resolution electrode mask
            report(0.5, "electrode mask (full-resolution surface)")
            occupied = [np.zeros(n, dtype=bool) for n in shape]
            row_counts = np.zeros((Z, H), dtype=np.int64)
            for b, elec in _electrode_blocks(coarse, filtered, band, k, shape, budget, scratch):
                electrode_sink[b.z0 : b.z1, b.y0 : b.y1] = elec.astype(np.uint8)
                row_counts[b.z0 : b.z1, b.y0 : b.y1] = elec.sum(axis=2)
                occupied[0][b.z0 : b.z1] |= elec.any(axis=(1, 2))
                occupied[1][b.y0 : b.y1] |= elec.any(axis=(0, 2))
                occupied[2] |= elec.any(axis=(0, 1))
            del coarse
            electrode_voxels = int(row_counts.sum())
            if electrode_voxels == 0:
                raise EngineInputError(
                    "the electrode mask is empty after the morphological opening: the electrode "
                    "is thinner than the opening ball (reduce opening_radius)"
                )

            # 4. pore threshold from the sharpened electrode voxels
            report(0.7, "unsharp mask and material/pore binarisation")
            pore_source = filtered if isinstance(pore_smoothing, str) else raw
            margin = int(np.ceil(4 * (unsharp_radius + smoothing))) + 1
            box = []
            for n, occ in zip(shape, occupied, strict=True):
                idx = np.flatnonzero(occ)
                box.append((max(int(idx[0]) - margin, 0), min(int(idx[-1]) + 1 + margin, n)))
            bz, by, bx = box
            row_start = np.cumsum(row_counts[bz[0] : bz[1], by[0] : by[1]].ravel())
            row_start = (row_start - row_counts[bz[0] : bz[1], by[0] : by[1]].ravel()).reshape(
                bz[1] - bz[0], by[1] - by[0]
            )

            def sharpened() -> Iterator[tuple[_Block, np.ndarray, np.ndarray]]:
                for b in _blocks(bz, by, bx[1] - bx[0], margin, budget):
                    region = pore_source.read((b.hz0, b.hz1), (b.hy0, b.hy1), bx)
                    if smoothing > 0:
                        region = ndi.gaussian_filter(region, smoothing, mode="nearest")
                    sharp = unsharp_mask(region, radius=unsharp_radius, amount=unsharp_amount)
                    inside = np.asarray(
                        electrode_sink[b.z0 : b.z1, b.y0 : b.y1, bx[0] : bx[1]], dtype=bool
                    )
                    yield b, sharp[b.core], inside

            if isinstance(pore_threshold, str):
                step = _step(electrode_voxels)
                samples = []
                for b, sharp, inside in sharpened():
                    rows = (slice(b.z0 - bz[0], b.z1 - bz[0]), slice(b.y0 - by[0], b.y1 - by[0]))
                    counts = row_counts[b.z0 : b.z1, b.y0 : b.y1].ravel()
                    samples.append(_pick(sharp[inside], counts, row_start[rows].ravel(), step))
                t_pore = _pore_threshold(np.concatenate(samples), pore_threshold)
                del samples
            else:
                t_pore = _pore_threshold(np.zeros(0), pore_threshold)

            # 5. pores, and the porosity sums
            report(0.85, "porosity by region")
            first, last = (
                int(np.flatnonzero(occupied[axis])[0]),
                int(np.flatnonzero(occupied[axis])[-1]),
            )
            bounds = slab_bounds(first, last - first + 1, int(regions))
            acc = _Sums(shape, axis, bounds)
            for b, sharp, inside in sharpened():
                pores = inside & (sharp < t_pore)
                full = np.zeros((b.z1 - b.z0, b.y1 - b.y0, W), dtype=bool)
                full[..., bx[0] : bx[1]] = pores
                pore_sink[b.z0 : b.z1, b.y0 : b.y1] = full.astype(np.uint8)
                elec = np.zeros_like(full)
                elec[..., bx[0] : bx[1]] = inside
                acc.add(b, full, elec)
        finally:
            scratch.close()

    stats, profile = acc.results(first, last, current_collector)
    report(1.0, "segmentation done")
    parameters = {
        "regions": int(regions),
        "thickness_axis": axis,
        "median_size": int(median_size),
        "mask_threshold": mask_threshold_method
        if isinstance(mask_threshold_method, str | float | int)
        else list(mask_threshold_method),
        "fill_radius": float(fill_radius),
        "opening_radius": float(opening_radius),
        "mask_downsample": k,
        "pore_smoothing": pore_smoothing,
        "unsharp_radius": float(unsharp_radius),
        "unsharp_amount": float(unsharp_amount),
        "pore_threshold": pore_threshold,
        "current_collector": current_collector,
        "block_voxels": budget,
    }
    return StreamedSegmentation(
        shape=shape,  # type: ignore[arg-type]
        electrode_voxels=electrode_voxels,
        mask_threshold=band,
        pore_threshold=t_pore,
        regions=stats,
        profile=profile,
        thickness_axis=axis,
        parameters=parameters,
    )


def _row_sample(block: np.ndarray, b: _Block, H: int, W: int, step: int) -> np.ndarray:
    """The voxels of a core block whose C-order index in the volume is a multiple of step."""
    zz = np.arange(b.z0, b.z1, dtype=np.int64)[:, None]
    yy = np.arange(b.y0, b.y1, dtype=np.int64)[None, :]
    starts = ((zz * H + yy) * W).ravel()
    counts = np.full(starts.size, W, dtype=np.int64)
    return _pick(block.ravel(), counts, starts, step)


def _candidates(source: Any, b: _Block, band: tuple[float, float]) -> np.ndarray:
    grey = source.read((b.z0, b.z1), (b.y0, b.y1))
    return (grey >= band[0]) & (grey < band[1])


def _electrode_blocks(
    coarse: np.ndarray,
    filtered: Any,
    band: tuple[float, float],
    k: int,
    shape: tuple[int, int, int],
    budget: int,
    scratch: h5py.File,
) -> Iterator[tuple[_Block, np.ndarray]]:
    """The full-resolution electrode mask block by block (``_refine_coarse_mask`` for k > 1)."""
    Z, H, W = shape
    tiles = list(_blocks((0, Z), (0, H), W, 0, budget))
    if k == 1:
        for b in tiles:
            yield b, coarse[b.z0 : b.z1, b.y0 : b.y1]
        return
    cube = np.ones((3, 3, 3), dtype=bool)
    inner_c = ndi.binary_erosion(coarse, cube, border_value=1)
    outer_c = ndi.binary_dilation(coarse, cube)

    def up(mask: np.ndarray, b: _Block) -> np.ndarray:
        part = mask[b.z0 // k : -(-b.z1 // k), b.y0 // k : -(-b.y1 // k)]
        for ax in range(3):
            part = np.repeat(part, k, axis=ax)
        oz, oy = b.z0 - (b.z0 // k) * k, b.y0 - (b.y0 // k) * k
        return part[oz : oz + b.z1 - b.z0, oy : oy + b.y1 - b.y0, :W]

    if outer_c.all():
        for b in tiles:
            yield b, up(outer_c, b)
        return
    # Label the dark voxels (outside, or in the band and not electrode material) per block.
    labels = scratch.create_dataset("labels", shape, dtype=np.int32, chunks=(1, min(H, 256), W))
    offset = 0
    touching = []
    for b in tiles:
        inner, outer = up(inner_c, b), up(outer_c, b)
        outside = ~outer
        dark = outside | (outer & ~inner & ~_candidates(filtered, b, band))
        lab, n = ndi.label(dark, output=np.int32)
        lab[lab > 0] += offset
        offset += n
        labels[b.z0 : b.z1, b.y0 : b.y1] = lab
        touching.append(np.unique(lab[outside]))
    # Join labels across the block faces.
    pairs = []
    z_cuts = sorted({b.z0 for b in tiles if b.z0 > 0})
    y_cuts = sorted({b.y0 for b in tiles if b.y0 > 0})
    for z in z_cuts:
        a, c = labels[z - 1], labels[z]
        both = (a > 0) & (c > 0)
        pairs.append(np.stack([a[both], c[both]]).astype(np.int64))
    for y in y_cuts:
        a, c = labels[:, y - 1], labels[:, y]
        both = (a > 0) & (c > 0)
        pairs.append(np.stack([a[both], c[both]]).astype(np.int64))
    edges = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), dtype=np.int64)
    n_nodes = offset + 1
    graph = coo_matrix(
        (np.ones(edges.shape[1], dtype=np.int8), (edges[0], edges[1])), shape=(n_nodes, n_nodes)
    )
    _, component = connected_components(graph, directed=False)
    outside_labels = np.concatenate(touching)
    outside_labels = outside_labels[outside_labels > 0]
    removed = np.isin(component, np.unique(component[outside_labels]))
    removed[0] = False
    for b in tiles:
        lab = labels[b.z0 : b.z1, b.y0 : b.y1]
        yield b, up(outer_c, b) & ~removed[lab]


class _Sums:
    """Porosity per region, lateral porosity and the volume profile, accumulated per block."""

    def __init__(self, shape: tuple[int, int, int], axis: int, bounds: np.ndarray) -> None:
        self.shape, self.axis, self.bounds = shape, axis, bounds
        n = bounds.size - 1
        lateral = tuple(s for i, s in enumerate(shape) if i != axis)
        # int32: a column holds at most one axis length of voxels
        self.pore_cols = np.zeros((n, *lateral), dtype=np.int32)
        self.elec_cols = np.zeros((n, *lateral), dtype=np.int32)
        self.elec_line = np.zeros(shape[axis], dtype=np.int64)
        self.material_line = np.zeros(shape[axis], dtype=np.int64)

    def add(self, b: _Block, pores: np.ndarray, elec: np.ndarray) -> None:
        axis, bounds = self.axis, self.bounds
        pores = pores & elec
        others = tuple(i for i in range(3) if i != axis)
        offset = (b.z0, b.y0, 0)[axis]
        length = pores.shape[axis]
        self.elec_line[offset : offset + length] += elec.sum(axis=others, dtype=np.int64)
        self.material_line[offset : offset + length] += (elec & ~pores).sum(
            axis=others, dtype=np.int64
        )
        # reduceat semantics: the last region runs to the end of the axis
        starts = list(bounds[:-1])
        ends = list(bounds[1:-1]) + [self.shape[axis]]
        for r, (a, e) in enumerate(zip(starts, ends, strict=True)):
            lo, hi = max(int(a) - offset, 0), min(int(e) - offset, length)
            if lo >= hi:
                continue
            sl = [slice(None)] * 3
            sl[axis] = slice(lo, hi)
            p = pores[tuple(sl)].sum(axis=axis, dtype=np.int32)
            q = elec[tuple(sl)].sum(axis=axis, dtype=np.int32)
            if axis == 0:
                target = (r, slice(b.y0, b.y1), slice(None))
            elif axis == 1:
                target = (r, slice(b.z0, b.z1), slice(None))
            else:
                target = (r, slice(b.z0, b.z1), slice(b.y0, b.y1))
            self.pore_cols[target] += p
            self.elec_cols[target] += q

    def results(
        self, first: int, last: int, current_collector: str
    ) -> tuple[RegionPorosity, VolumeProfile]:
        pore_n = self.pore_cols.sum(axis=(1, 2), dtype=np.int64)
        elec_n = self.elec_cols.sum(axis=(1, 2), dtype=np.int64)
        lateral = np.empty(self.pore_cols.shape, dtype=np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            by_region = np.where(elec_n > 0, pore_n / np.maximum(elec_n, 1), np.nan)
            for r in range(lateral.shape[0]):  # one region at a time in float64, as the whole
                p, e = self.pore_cols[r], self.elec_cols[r]
                lateral[r] = np.where(e > 0, p / np.maximum(e, 1), np.nan)
        stats = RegionPorosity(
            porosity=float(pore_n.sum() / max(elec_n.sum(), 1)),
            porosity_by_region=by_region.astype(np.float64),
            region_bounds=self.bounds,
            electrode_voxels_by_region=elec_n,
            lateral_porosity=lateral,
        )
        e = self.elec_line[first : last + 1]
        mat = self.material_line[first : last + 1]
        distance = np.arange(e.size) + 0.5
        if current_collector == "end":
            e, mat = e[::-1], mat[::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(e > 0, mat / np.maximum(e, 1), np.nan)
        profile = VolumeProfile(
            distance_voxels=distance,
            electrode_voxels=e,
            material_voxels=mat,
            material_fraction=fraction,
        )
        return stats, profile
