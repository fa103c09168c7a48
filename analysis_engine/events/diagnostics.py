"""Occupancy per frame and pile-up diagnostics of a HEXITEC measurement.

Charge-sharing correction by clustering neighbouring hits only works while hits are sparse:
HEXITEC guidance is an occupancy (fraction of pixels hit per frame) below about 1-2 %. Above
that, hits of different photons touch and are taken for one shared photon, and two photons in
one pixel within a frame pile up into one hit of their summed energy.

Model (Poisson). A pixel that receives ``lambda`` photons per frame on average reports a hit in
a frame with probability ``q = 1 - exp(-lambda)`` (a frame holds at most one value per pixel),
so the measured fraction of frames in which the pixel was hit gives
``lambda = -ln(1 - q)``, and the probability that a frame holds two or more photons in that
pixel is ``P2 = 1 - exp(-lambda) (1 + lambda) = 1 - (1 - q)(1 - ln(1 - q))``. The share of hits
that are piled up is ``P2 / q``.

The kernels of :mod:`analysis_engine.events._kernels` count what these functions need: frames
by number of hit pixels, hits per pixel, and multi-pixel clusters whose summed energy exceeds
the highest line energy of the measurement (a cluster of one photon cannot).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "DEFAULT_MAX_LINE_KEV",
    "DEFAULT_OCCUPANCY_LIMIT",
    "occupancy_summary",
    "pileup_maps",
    "pileup_probability",
]

#: Flag a measurement whose mean occupancy (fraction of pixels hit per frame) exceeds this.
DEFAULT_OCCUPANCY_LIMIT = 0.02
#: Highest line energy when the input names no beam energy: the 115 keV elastic line.
DEFAULT_MAX_LINE_KEV = 115.0


def pileup_probability(hit_fraction: np.ndarray | float) -> np.ndarray:
    """Probability of two or more photons in one pixel in one frame, from the fraction of
    frames in which the pixel was hit (Poisson, see the module docstring); 1 where every
    frame was hit (the rate is then unbounded)."""
    q = np.clip(np.asarray(hit_fraction, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p2 = 1.0 - (1.0 - q) * (1.0 - np.log1p(-q))
    return np.where(q >= 1.0, 1.0, np.clip(p2, 0.0, 1.0))


def occupancy_summary(
    frames_by_hits: np.ndarray,
    n_pixels: int,
    *,
    limit: float = DEFAULT_OCCUPANCY_LIMIT,
    histogram_bins: int = 20,
) -> dict[str, Any]:
    """Mean, 99th percentile and maximum occupancy per frame, and a histogram.

    Parameters
    ----------
    frames_by_hits : ndarray, shape (n_pixels + 1,)
        ``frames_by_hits[k]``: number of frames in which ``k`` pixels were hit.
    n_pixels
        Pixels of the detector.
    limit
        Occupancy (fraction, 0..1) above which the measurement is flagged.
    histogram_bins
        Bins of the summary histogram, from 0 to the maximum occupancy.

    Returns
    -------
    dict
        ``frames``, ``occupancy_mean``, ``occupancy_p99``, ``occupancy_max`` (fractions),
        ``occupancy_limit``, ``occupancy_flagged`` (mean above the limit),
        ``frames_over_limit_fraction`` and ``occupancy_histogram`` (``edges``, fractions, and
        ``frames`` per bin). Occupancies are None when there are no frames.
    """
    h = np.asarray(frames_by_hits, dtype=np.int64)
    if h.ndim != 1 or h.size != n_pixels + 1:
        raise EngineInputError(f"frames_by_hits must have {n_pixels + 1} entries, got {h.shape}")
    frames = int(h.sum())
    out: dict[str, Any] = {"frames": frames, "occupancy_limit": float(limit)}
    if frames == 0:
        return {
            **out,
            "occupancy_mean": None,
            "occupancy_p99": None,
            "occupancy_max": None,
            "occupancy_flagged": False,
            "frames_over_limit_fraction": None,
            "occupancy_histogram": None,
        }
    k = np.arange(h.size)
    occupancy = k / n_pixels
    cumulative = np.cumsum(h)
    p99 = int(np.searchsorted(cumulative, 0.99 * frames))  # smallest k with CDF >= 0.99
    top = int(k[h > 0].max())
    mean = float(np.dot(k, h) / (frames * n_pixels))
    edges = np.linspace(0.0, max(top, 1) / n_pixels, histogram_bins + 1)
    counts, _ = np.histogram(occupancy, bins=edges, weights=h)
    return {
        **out,
        "occupancy_mean": mean,
        "occupancy_p99": float(occupancy[p99]),
        "occupancy_max": float(occupancy[top]),
        "occupancy_flagged": bool(mean > limit),
        "frames_over_limit_fraction": float(h[occupancy > limit].sum() / frames),
        "occupancy_histogram": {
            "edges": edges.tolist(),
            "frames": counts.astype(np.int64).tolist(),
        },
    }


def pileup_maps(
    pixel_hits: np.ndarray, n_frames: int, *, bad_pixels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per-pixel hit fraction and pile-up probability, with their summary.

    Parameters
    ----------
    pixel_hits : ndarray (rows, cols)
        Hits per pixel over the measurement.
    n_frames
        Frames in the measurement.
    bad_pixels : ndarray (rows, cols) of bool, optional
        Pixels left out of the summary (dead, noisy); the maps keep them.

    Returns
    -------
    hit_fraction, p2 : ndarray (rows, cols)
        Fraction of frames in which each pixel was hit, and the Poisson probability of two or
        more photons in it in one frame.
    summary : dict
        ``pileup_probability_mean`` and ``pileup_probability_max`` (per pixel and frame, over
        the good pixels), ``pileup_fraction_of_hits`` (share of hits holding two or more
        photons), ``photons_per_pixel_frame_mean`` (the Poisson rate, mean over good pixels).
    """
    hits = np.asarray(pixel_hits, dtype=np.float64)
    if n_frames <= 0:
        nan = np.full(hits.shape, np.nan)
        empty = dict.fromkeys(
            (
                "pileup_probability_mean",
                "pileup_probability_max",
                "pileup_fraction_of_hits",
                "photons_per_pixel_frame_mean",
            )
        )
        return nan, nan, empty
    q = np.clip(hits / n_frames, 0.0, 1.0)
    p2 = pileup_probability(q)
    good = np.ones(hits.shape, bool) if bad_pixels is None else ~np.asarray(bad_pixels, bool)
    if not good.any():
        good = np.ones(hits.shape, bool)
    with np.errstate(divide="ignore"):
        rate = -np.log1p(-q[good])
    summary = {
        "pileup_probability_mean": float(p2[good].mean()),
        "pileup_probability_max": float(p2[good].max()),
        "pileup_fraction_of_hits": float(p2[good].sum() / q[good].sum())
        if q[good].sum() > 0
        else 0.0,
        "photons_per_pixel_frame_mean": float(rate.mean()),
    }
    return q, p2, summary
