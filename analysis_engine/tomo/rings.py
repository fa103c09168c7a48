"""Ring artefact removal by stripe filtering of sinograms (Vo, Atwood & Drakopoulos 2018).

A detector pixel whose response differs from the flat field adds a constant offset along its
sinogram column (a stripe), which back projection turns into a ring. Removing the stripes in
the sinogram removes the rings without blurring the slice. The algorithms are algotom's
implementations of Vo et al., Opt. Express 26, 28396 (2018): "sorting" (algorithm 3, small
and partial stripes), "filtering" (algorithm 2), and "all" (algorithms 3, 5 and 6 together,
also large and dead stripes).
"""

from __future__ import annotations

import warnings

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = ["RING_METHODS", "remove_rings", "stripe_amplitude"]

RING_METHODS = ("sorting", "filtering", "all")


def remove_rings(
    sinograms: np.ndarray,
    *,
    method: str = "sorting",
    size: int | None = None,
    snr: float = 3.0,
    large_size: int = 51,
) -> np.ndarray:
    """Remove stripes (ring artefacts) from sinograms.

    Parameters
    ----------
    sinograms : ndarray, shape (n_angles, n_cols) or (n_slices, n_angles, n_cols)
        Line integrals (after minus log).
    method
        One of :data:`RING_METHODS`.
    size
        Median filter width across the detector for small stripes (pixels); larger removes
        wider stripes but smooths real features. Default: about 1 % of the detector width
        (21 for 2048 pixels, Vo's recommendation), at least 5.
    snr
        Detection ratio for large and dead stripes (``method="all"``).
    large_size
        Filter width for large stripes (``method="all"``).

    Returns
    -------
    ndarray, same shape, float32
    """
    from algotom.prep import removal

    if method not in RING_METHODS:
        raise EngineInputError(
            f"unknown ring removal method {method!r}: expected one of {', '.join(RING_METHODS)}"
        )
    sinograms = np.asarray(sinograms, dtype=np.float32)
    single = sinograms.ndim == 2
    stack = sinograms[None] if single else sinograms
    out = np.empty_like(stack)
    if size is None:
        size = int(np.clip(round(stack.shape[-1] / 100), 5, 31)) | 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, sino in enumerate(stack):
            if method == "sorting":
                out[i] = removal.remove_stripe_based_sorting(sino, size=size)
            elif method == "filtering":
                out[i] = removal.remove_stripe_based_filtering(sino, sigma=3, size=size)
            else:
                out[i] = removal.remove_all_stripe(sino, snr=snr, la_size=large_size, sm_size=size)
    return out[0] if single else out


def stripe_amplitude(sinogram: np.ndarray, *, size: int = 9) -> float:
    """RMS stripe strength of a sinogram: the column means minus their median-smoothed trend.

    Parameters
    ----------
    sinogram : ndarray, shape (n_angles, n_cols) or (n_slices, n_angles, n_cols)

    Returns
    -------
    float
        Root mean square of the stripe offsets, in the units of the sinogram.
    """
    from scipy.ndimage import median_filter

    sinogram = np.asarray(sinogram, dtype=np.float64)
    profile = sinogram.mean(axis=-2)
    trend = median_filter(profile, size=(1,) * (profile.ndim - 1) + (size,), mode="nearest")
    return float(np.sqrt(np.mean((profile - trend) ** 2)))
