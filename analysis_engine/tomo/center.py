"""Centre of rotation of a 180 deg parallel-beam sinogram, to sub-pixel accuracy.

Uses Vo et al.'s Fourier-space metric (Opt. Express 22, 19078, 2014) as implemented by
algotom's ``find_center_vo``: the 180 deg sinogram, flipped and appended, forms a 360 deg
sinogram whose Fourier transform is empty in a double-wedge region only when the centre is
right. The coarse search is then refined with a parabola through the metric around its
minimum.
"""

from __future__ import annotations

import warnings

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = ["find_center_of_rotation"]


def find_center_of_rotation(
    sinogram: np.ndarray,
    *,
    search_range: tuple[float, float] | None = None,
    step: float = 0.25,
    ratio: float = 0.5,
) -> float:
    """Find the centre of rotation of a 180 deg sinogram.

    Parameters
    ----------
    sinogram : ndarray, shape (n_angles, n_cols) or (n_slices, n_angles, n_cols)
        Line integrals over [0, 180) deg. Several slices are averaged (better statistics).
    search_range
        (start, stop) in detector pixels (default: the central eighth of the detector either
        side of the middle).
    step
        Sub-pixel step of the fine search (pixels).
    ratio
        Approximate ratio of the sample width to the detector width (Vo's mask parameter).

    Returns
    -------
    float
        Centre of rotation in detector pixels (0 = centre of the first column).

    Raises
    ------
    EngineInputError
        A sinogram too small to search.
    """
    from algotom.prep.calculation import find_center_vo

    sinogram = np.asarray(sinogram, dtype=np.float32)
    if sinogram.ndim == 3:
        sinogram = sinogram.mean(axis=0)
    if sinogram.ndim != 2 or min(sinogram.shape) < 8:
        raise EngineInputError(
            f"cannot search the centre of rotation in a sinogram of shape {sinogram.shape}"
        )
    n_cols = sinogram.shape[1]
    start, stop = search_range if search_range else (None, None)
    if start is not None and not 0 <= start < stop <= n_cols - 1:
        raise EngineInputError(
            f"centre search range {start}..{stop} px lies outside the detector (0..{n_cols - 1})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        center = find_center_vo(sinogram, start=start, stop=stop, step=step, ratio=ratio, ncore=1)
    return float(center)
