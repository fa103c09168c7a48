"""360 deg off-centre ("half acquisition", double field of view) scans to 180 deg sinograms.

With the rotation axis near one edge of the detector, the projection at ``theta + 180 deg``,
mirrored about the axis, supplies the other half of the projection at ``theta``. Stitching the
two gives a 180 deg sinogram about twice as wide (Vo, Atwood & Drakopoulos, Opt. Express 29,
17849, 2021). The overlap width and side are found automatically from the correlation of the
two halves (algotom's ``find_overlap``, the method of that paper), which gives the axis.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "HalfAcquisitionGeometry",
    "opposite_projections",
    "find_half_acquisition_center",
    "convert_360_to_180",
]


@dataclass(frozen=True)
class HalfAcquisitionGeometry:
    """Axis of a 360 deg off-centre scan: ``center`` (detector px), ``overlap`` (px) of the
    two halves and ``side`` ("left" or "right": where on the detector the axis lies)."""

    center: float
    overlap: float
    side: str


def _check_360(sinograms: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    if angles_deg.shape != (sinograms.shape[-2],):
        raise EngineInputError(
            f"{angles_deg.size} angles for sinograms with {sinograms.shape[-2]} rows"
        )
    if np.any(np.diff(angles_deg) <= 0):
        raise EngineInputError("half-acquisition conversion needs increasing angles")
    step = float(np.median(np.diff(angles_deg)))
    if angles_deg[-1] - angles_deg[0] + step < 360.0 - 1.5 * step:
        raise EngineInputError(
            f"a half-acquisition (off-centre) scan must cover 360 deg; these angles cover "
            f"{angles_deg[-1] - angles_deg[0] + step:.1f} deg"
        )
    return angles_deg


def opposite_projections(
    sinograms: np.ndarray, angles_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a 360 deg sinogram into the rows over [theta0, theta0 + 180) and their opposites.

    Parameters
    ----------
    sinograms : ndarray, shape (..., n_angles, n_cols)
    angles_deg : ndarray, shape (n_angles,), increasing, covering 360 deg

    Returns
    -------
    first, opposite : ndarray, shape (..., n_180, n_cols)
        Rows at ``theta`` and at ``theta + 180 deg`` (linearly interpolated in angle when no
        projection was taken exactly there; exact for an even number of evenly spaced angles).
    angles_180_deg : ndarray, shape (n_180,)
    """
    sinograms = np.asarray(sinograms, dtype=np.float32)
    angles_deg = _check_360(sinograms, angles_deg)
    keep = angles_deg < angles_deg[0] + 180.0 - 1e-6
    first = sinograms[..., keep, :]
    target = angles_deg[keep] + 180.0
    position = np.interp(target, angles_deg, np.arange(angles_deg.size))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, angles_deg.size - 1)
    weight = (position - low).astype(np.float32)[:, None]
    opposite = (1.0 - weight) * sinograms[..., low, :] + weight * sinograms[..., high, :]
    return first, opposite.astype(np.float32), angles_deg[keep]


def find_half_acquisition_center(
    sinogram: np.ndarray,
    angles_deg: np.ndarray,
    *,
    side: str | None = None,
    window: int | None = None,
) -> HalfAcquisitionGeometry:
    """Find the axis of a 360 deg off-centre scan from the overlap of opposite projections.

    Parameters
    ----------
    sinogram : ndarray, shape (n_angles, n_cols) or (n_slices, n_angles, n_cols)
        Line integrals over 360 deg (several slices are averaged).
    angles_deg : ndarray, shape (n_angles,)
    side
        "left" or "right" if known (where the axis lies on the detector); found if None.
    window
        Width of the correlation window in pixels (default: a tenth of the detector, >= 16).

    Returns
    -------
    HalfAcquisitionGeometry
    """
    from algotom.prep.calculation import find_overlap

    sinogram = np.asarray(sinogram, dtype=np.float32)
    if sinogram.ndim == 3:
        sinogram = sinogram.mean(axis=0)
    first, opposite, _ = opposite_projections(sinogram, angles_deg)
    n_cols = sinogram.shape[-1]
    window = int(window or max(16, n_cols // 10))
    side_code = {None: None, "left": 0, "right": 1}.get(side, -1)
    if side_code == -1:
        raise EngineInputError(f"half-acquisition side must be 'left' or 'right', not {side!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        overlap, found_side, _ = find_overlap(
            first, opposite[:, ::-1], window, side=side_code, denoise=True, ncore=1
        )
    overlap = float(overlap)
    center = overlap / 2.0 - 0.5 if found_side == 0 else n_cols - overlap / 2.0 - 0.5
    return HalfAcquisitionGeometry(
        center=center, overlap=overlap, side="left" if found_side == 0 else "right"
    )


def convert_360_to_180(
    sinograms: np.ndarray, angles_deg: np.ndarray, center: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Stitch a 360 deg off-centre sinogram into a 180 deg sinogram centred on the axis.

    Parameters
    ----------
    sinograms : ndarray, shape (n_angles, n_cols) or (n_slices, n_angles, n_cols)
        Line integrals over 360 deg.
    angles_deg : ndarray, shape (n_angles,)
    center
        Axis position on the detector (px), e.g. from :func:`find_half_acquisition_center`.

    Returns
    -------
    sino_180 : ndarray, shape (..., n_180, n_wide), float32
        ``n_wide`` is about ``2 * max(center, n_cols - 1 - center) + 1``; the two halves are
        blended with linear weights across their overlap.
    angles_180_deg : ndarray, shape (n_180,)
    center_180 : float
        Axis position in the stitched sinogram.
    """
    sinograms = np.asarray(sinograms, dtype=np.float32)
    n_cols = sinograms.shape[-1]
    if not 0.0 <= center <= n_cols - 1:
        raise EngineInputError(
            f"half-acquisition axis {center:.2f} px lies outside the detector (0..{n_cols - 1})"
        )
    first, opposite, angles_180 = opposite_projections(sinograms, angles_deg)
    mirrored_side = center < 0.5 * (n_cols - 1)
    if mirrored_side:  # work with the axis on the right, then mirror back
        first, opposite = first[..., ::-1], opposite[..., ::-1]
        center = n_cols - 1 - center
    width = int(math.floor(2.0 * center + 1e-6)) + 1
    out = np.zeros(first.shape[:-1] + (width,), dtype=np.float32)
    columns = np.arange(width)
    # mirrored source position of each output column in the opposite projection
    source = 2.0 * center - columns
    low = np.clip(np.floor(source).astype(int), 0, n_cols - 1)
    high = np.clip(low + 1, 0, n_cols - 1)
    frac = (source - np.floor(source)).astype(np.float32)
    mirror = (1.0 - frac) * opposite[..., low] + frac * opposite[..., high]
    direct = np.zeros_like(out)
    direct[..., : min(n_cols, width)] = first[..., : min(n_cols, width)]
    overlap_start = 2.0 * center - (n_cols - 1)
    overlap_stop = float(n_cols - 1)
    weight = np.clip((overlap_stop - columns) / max(overlap_stop - overlap_start, 1.0), 0.0, 1.0)
    weight[columns < overlap_start] = 1.0
    weight[columns > overlap_stop] = 0.0
    weight = weight.astype(np.float32)
    out = weight * direct + (1.0 - weight) * mirror
    if mirrored_side:
        out = out[..., ::-1]
        center = width - 1 - center
    return np.ascontiguousarray(out, dtype=np.float32), angles_180, float(center)
