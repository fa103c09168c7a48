"""Straightforward reference: label each frame with ``scipy.ndimage.label`` (8-connected).

Slow (one image and one labelling per frame) but obviously right; the tests compare the fast
kernels with it and the benchmark uses it as the baseline.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from analysis_engine.events.clustering import EnergyBinning

__all__ = ["histogram_events_reference"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def histogram_events_reference(
    frame: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    energy_kev: np.ndarray,
    *,
    charge_sharing: str = "paper",
    bin_width_kev: float = 0.05,
    range_kev: tuple[float, float] = (0.0, 160.0),
    rows: int = 80,
    cols: int = 80,
) -> tuple[np.ndarray, dict[str, int]]:
    """Per-pixel histograms by labelling each frame's image of hits.

    Parameters
    ----------
    frame, row, col, energy_kev
        (n,) event list sorted by frame, energies in keV. At most one hit per pixel per frame.
    charge_sharing
        ``paper``, ``discriminate``, ``add`` or ``none``.

    Returns
    -------
    (histograms, counts)
        (rows, cols, n_bins) uint32 histograms and cluster counts {"1", "2", "3+"}.
    """
    binning = EnergyBinning(range_kev[0], range_kev[1], bin_width_kev)
    n_bins = binning.n_bins
    hist = np.zeros((rows, cols, n_bins), dtype=np.uint32)
    counts = {"1": 0, "2": 0, "3+": 0}
    image = np.zeros((rows, cols), dtype=np.float64)
    hit = np.zeros((rows, cols), dtype=bool)
    frame = np.asarray(frame)
    starts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]])
    stops = np.r_[starts[1:], len(frame)]
    out_r: list[int] = []
    out_c: list[int] = []
    out_e: list[float] = []
    for s, e in zip(starts, stops, strict=True):
        r, c, en = row[s:e].astype(np.int64), col[s:e].astype(np.int64), energy_kev[s:e]
        image[r, c] = en
        hit[r, c] = True
        labels, n_labels = ndimage.label(hit, structure=_EIGHT_CONNECTED)
        lab = labels[r, c]
        for label in range(1, n_labels + 1):
            members = np.flatnonzero(lab == label)
            size = members.size
            counts["1" if size == 1 else "2" if size == 2 else "3+"] += 1
            # the first hit in file order wins a tie for the largest energy, as in the kernel
            best = members[np.argmax(en[members])]
            if charge_sharing == "none":
                for m in members:
                    out_r.append(r[m]), out_c.append(c[m]), out_e.append(float(en[m]))
            elif size == 1 or charge_sharing == "add" or (charge_sharing == "paper" and size == 2):
                out_r.append(r[best]), out_c.append(c[best])
                out_e.append(float(np.sum(en[members].astype(np.float64))))
        image[r, c] = 0.0
        hit[r, c] = False
    if out_e:
        x = (np.asarray(out_e) - binning.lo_kev) * (n_bins / (binning.hi_kev - binning.lo_kev))
        ok = (x >= 0) & (x < n_bins)
        np.add.at(
            hist,
            (np.asarray(out_r)[ok], np.asarray(out_c)[ok], x[ok].astype(np.int64)),
            1,
        )
    return hist, counts
