"""A paper-scale XCT scan: 3600 projections over 360 deg, off-centre axis, wide detector.

The paper's XCT (Huang et al. 2022) recorded 3600 projections over 360 deg with the rotation
axis near one edge of a ~2560 pixel detector (double field of view, "half acquisition"), so a
stitched slice is about twice the detector width. :func:`write_paper_scan` writes such a scan
as NXtomo, cut to ``slices`` detector rows so a run fits the machine, one band of rows at a
time: memory is bounded by ``3600 x band_rows x detector_cols`` values, whatever the number of
slices.

The sample is an electrode cylinder (solid matrix, attenuation ``mu_solid``) centred on the
rotation axis, holding non-overlapping spherical pores filled with electrolyte
(``mu_pore``). Projections are exact line integrals of that geometry, computed analytically
(the chord of a disc of radius r at distance d from its centre is 2 sqrt(r^2 - d^2)), so no
voxel volume is ever built, and the ground truth (porosity of the slab, axis position) is
known in closed form.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo_stream import NXtomoStreamWriter

__all__ = ["PaperScanGeometry", "paper_scan_geometry", "pore_spheres", "write_paper_scan"]

PAPER_PROJECTIONS = 3600
PAPER_RANGE_DEG = 360.0
PAPER_PIXEL_SIZE_UM = 7.91


@dataclass(frozen=True)
class PaperScanGeometry:
    """Geometry of a paper-scale scan (pixels unless said).

    ``center_of_rotation`` is the detector column hit by the axis (near the right edge);
    ``sample_radius`` the electrode cylinder's radius about the axis; ``stitched_width`` the
    width of a 180 deg sinogram after stitching.
    """

    detector_cols: int
    slices: int
    n_projections: int
    center_of_rotation: float
    sample_radius: float
    stitched_width: int


def paper_scan_geometry(
    *, detector_cols: int = 2048, slices: int = 64, overlap_px: int | None = None
) -> PaperScanGeometry:
    """Paper geometry for a detector of ``detector_cols`` and ``slices`` rows.

    The axis sits ``overlap_px / 2`` pixels inside the right edge of the detector, so the two
    halves of the 360 deg scan overlap by ``overlap_px`` columns when stitched (default a
    quarter of the detector, at least 128: the automatic overlap search of
    :func:`analysis_engine.tomo.stitch.find_half_acquisition_center` correlates windows of a
    tenth of the detector and misses narrower overlaps).
    """
    if overlap_px is None:
        overlap_px = max(128, detector_cols // 4)
    if detector_cols < 256:
        raise EngineInputError(f"detector_cols must be at least 256, got {detector_cols}")
    if slices < 1:
        raise EngineInputError(f"slices must be at least 1, got {slices}")
    center = detector_cols - 1 - 0.5 * overlap_px + 0.5
    radius = 0.9 * center
    stitched = int(np.floor(2.0 * center + 1e-6)) + 1
    return PaperScanGeometry(
        detector_cols=int(detector_cols),
        slices=int(slices),
        n_projections=PAPER_PROJECTIONS,
        center_of_rotation=float(center),
        sample_radius=float(radius),
        stitched_width=stitched,
    )


def pore_spheres(
    geometry: PaperScanGeometry,
    *,
    radius_range_px: tuple[float, float] = (16.0, 24.0),
    spacing_px: float = 50.0,
    seed: int = 0,
) -> np.ndarray:
    """Non-overlapping pore spheres inside the electrode cylinder, around the slab of slices.

    Centres sit on a jittered cubic lattice of ``spacing_px`` (each lattice column along z
    shifted by its own random phase, so every slice cuts pores); the jitter and the radius are
    drawn so a sphere never leaves its lattice cell, hence no two overlap.

    Returns
    -------
    ndarray, shape (n, 4), float64
        ``x, y, z, r``: x, y from the axis (x along detector columns, y the other lateral
        axis), z the detector row (slice) of the centre, r the radius.
    """
    rng = np.random.default_rng(seed)
    r_lo, r_hi = radius_range_px
    reach = geometry.sample_radius - r_hi - 2.0
    steps = np.arange(-reach, reach + 1e-9, spacing_px)
    z_steps = np.arange(-r_hi - spacing_px, geometry.slices + r_hi + spacing_px, spacing_px)
    x, y, z = np.meshgrid(steps, steps, z_steps, indexing="ij")
    z = z + rng.uniform(0.0, spacing_px, size=x.shape[:2])[:, :, None]
    centres = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    radii = rng.uniform(r_lo, r_hi, size=len(centres))
    room = 0.5 * spacing_px - radii - 0.5
    centres += rng.uniform(-1.0, 1.0, size=centres.shape) * room[:, None]
    keep = np.hypot(centres[:, 0], centres[:, 1]) + radii < geometry.sample_radius - 1.0
    keep &= (centres[:, 2] + radii > -0.5) & (centres[:, 2] - radii < geometry.slices - 0.5)
    return np.column_stack([centres[keep], radii[keep]])


@numba.njit(parallel=True, cache=True)
def _project_discs(xs, ys, r2s, weights, cos_t, sin_t, center, out):  # pragma: no cover
    """Add sum_d weight_d * 2 sqrt(r_d^2 - (u - u_d)^2) to ``out`` (n_angles, cols)."""
    n_angles, cols = out.shape
    for a in numba.prange(n_angles):
        c = cos_t[a]
        s = sin_t[a]
        for d in range(xs.size):
            u0 = xs[d] * c + ys[d] * s + center
            r = math.sqrt(r2s[d])
            lo = max(0, int(math.ceil(u0 - r)))
            hi = min(cols - 1, int(math.floor(u0 + r)))
            for col in range(lo, hi + 1):
                du = col - u0
                h = r2s[d] - du * du
                if h > 0.0:
                    out[a, col] += weights[d] * 2.0 * math.sqrt(h)


def _slice_discs(spheres: np.ndarray, row: int) -> tuple[np.ndarray, ...]:
    dz = spheres[:, 2] - row
    r2 = spheres[:, 3] ** 2 - dz**2
    hit = r2 > 0
    return spheres[hit, 0], spheres[hit, 1], r2[hit]


def write_paper_scan(
    path: str | os.PathLike,
    *,
    slices: int = 64,
    detector_cols: int = 2048,
    mu_solid_per_px: float = 5e-4,
    mu_pore_per_px: float = 1e-4,
    flat_counts: float = 20000.0,
    dark_counts: float = 100.0,
    n_flats: int = 20,
    n_darks: int = 10,
    band_rows: int = 8,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write a paper-geometry NXtomo scan band by band; return its ground truth.

    Parameters
    ----------
    path
        NXtomo file to write (atomically).
    slices
        Detector rows (slices) to keep.
    detector_cols
        Detector width in pixels (the paper's camera: about 2560).
    mu_solid_per_px, mu_pore_per_px
        Linear attenuation of the electrode matrix and of the electrolyte in the pores,
        per pixel.
    flat_counts, dark_counts
        Mean counts of the open beam and of the dark current; projections carry Poisson noise.
    n_flats, n_darks
        Flat and dark images written before the projections.
    band_rows
        Detector rows simulated and written at a time (bounds the memory).
    seed
        Random seed (pores and noise).
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``center_of_rotation`` (px), ``stitched_width``, ``porosity`` (pore volume / electrode
        volume over the slab, from the sphere geometry), ``pores``, ``sample_radius_px``,
        ``projections``, ``slices``, ``detector_cols``, ``bytes``, ``seconds``.
    """
    started = time.perf_counter()
    geometry = paper_scan_geometry(detector_cols=detector_cols, slices=slices)
    spheres = pore_spheres(geometry, seed=seed)
    n_proj = geometry.n_projections
    angles_proj = np.arange(n_proj) * PAPER_RANGE_DEG / n_proj
    image_key = np.concatenate([np.full(n_darks, 2), np.full(n_flats, 1), np.zeros(n_proj, int)])
    angles = np.concatenate([np.zeros(n_darks + n_flats), angles_proj])
    theta = np.deg2rad(angles_proj)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    rng = np.random.default_rng(seed + 1)
    cols = geometry.detector_cols
    pore_area = 0.0
    with NXtomoStreamWriter(
        path,
        image_key,
        angles,
        rows=slices,
        cols=cols,
        pixel_size_m=PAPER_PIXEL_SIZE_UM * 1e-6,
        rows_per_chunk=band_rows,
    ) as out:
        for first in range(0, slices, band_rows):
            last = min(slices, first + band_rows)
            band = np.empty((image_key.size, last - first, cols), dtype=np.uint16)
            for row in range(first, last):
                line = np.zeros((n_proj, cols), dtype=np.float64)
                # the electrode cylinder, then the pores (electrolyte replacing solid)
                _project_discs(
                    np.zeros(1),
                    np.zeros(1),
                    np.array([geometry.sample_radius**2]),
                    np.array([mu_solid_per_px]),
                    cos_t,
                    sin_t,
                    geometry.center_of_rotation,
                    line,
                )
                xs, ys, r2 = _slice_discs(spheres, row)
                pore_area += float(np.pi * r2.sum())
                _project_discs(
                    xs,
                    ys,
                    r2,
                    np.full(xs.size, mu_pore_per_px - mu_solid_per_px),
                    cos_t,
                    sin_t,
                    geometry.center_of_rotation,
                    line,
                )
                expected = flat_counts * np.exp(-line) + dark_counts
                band[n_darks + n_flats :, row - first, :] = np.minimum(rng.poisson(expected), 65535)
                del line, expected
            band[:n_darks] = np.minimum(rng.poisson(dark_counts, band[:n_darks].shape), 65535)
            band[n_darks : n_darks + n_flats] = np.minimum(
                rng.poisson(flat_counts + dark_counts, band[n_darks : n_darks + n_flats].shape),
                65535,
            )
            out.write_rows(first, band)
            del band
            if progress:
                progress(last / slices, f"detector rows {first}:{last} of {slices} written")
    electrode_area = np.pi * geometry.sample_radius**2 * slices
    return {
        "file": str(Path(path)),
        "center_of_rotation": geometry.center_of_rotation,
        "stitched_width": geometry.stitched_width,
        "sample_radius_px": geometry.sample_radius,
        "porosity": pore_area / electrode_area,
        "pores": int(len(spheres)),
        "projections": n_proj,
        "scan_range_deg": PAPER_RANGE_DEG,
        "slices": int(slices),
        "detector_cols": int(cols),
        "pixel_size_um": PAPER_PIXEL_SIZE_UM,
        "mu_solid_per_px": mu_solid_per_px,
        "mu_pore_per_px": mu_pore_per_px,
        "bytes": Path(path).stat().st_size,
        "seconds": time.perf_counter() - started,
    }


def write_paper_ground_truth(path: str | os.PathLike, truth: dict[str, Any]) -> None:
    """Write the ground truth of :func:`write_paper_scan` as JSON."""
    Path(path).write_text(json.dumps(truth, indent=2) + "\n")
