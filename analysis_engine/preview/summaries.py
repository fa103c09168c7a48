"""Quick-look summaries: an event list's count map, spectrum, frame rate and occupancy; the
energy windows of the S-parameter marked on a spectrum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.compton.kinematics import energy_from_pz
from analysis_engine.compton.profile import DEFAULT_HIGH_WINDOW_AU, DEFAULT_LOW_WINDOW_AU
from analysis_engine.errors import EngineInputError

__all__ = ["EventsPreview", "events_preview", "s_windows_kev"]


@dataclass(frozen=True)
class EventsPreview:
    """Counts per pixel (rows, cols), summed spectrum (bin centres keV, counts), and rates.

    ``occupancy`` is the mean fraction of the detector's pixels hit per frame;
    ``events_per_frame`` the mean number of events per frame in the sample.
    """

    counts: np.ndarray
    energy_kev: np.ndarray
    spectrum: np.ndarray
    frames_sampled: int
    events_sampled: int
    events_per_frame: float
    occupancy: float


def events_preview(
    frame: ArrayLike,
    row: ArrayLike,
    col: ArrayLike,
    energy_kev: ArrayLike,
    *,
    rows: int = 80,
    cols: int = 80,
    bin_width_kev: float = 0.5,
    range_kev: tuple[float, float] = (0.0, 200.0),
) -> EventsPreview:
    """Count map, summed spectrum and occupancy of a sample of events (no clustering).

    Parameters
    ----------
    frame, row, col : array_like of int, shape (n,)
    energy_kev : array_like of float, shape (n,)
    rows, cols : int
        Detector shape.
    bin_width_kev, range_kev
        Spectrum binning.
    """
    frame = np.asarray(frame).ravel()
    row = np.asarray(row, dtype=np.int64).ravel()
    col = np.asarray(col, dtype=np.int64).ravel()
    energy = np.asarray(energy_kev, dtype=np.float64).ravel()
    if not (frame.size == row.size == col.size == energy.size):
        raise EngineInputError("frame, row, col and energy must have the same length")
    if frame.size == 0:
        raise EngineInputError("no events to preview")
    if row.min() < 0 or row.max() >= rows or col.min() < 0 or col.max() >= cols:
        raise EngineInputError(f"event pixel outside the {rows} x {cols} detector")
    lo, hi = range_kev
    if not (bin_width_kev > 0 and hi > lo):
        raise EngineInputError("need a positive bin width and range_kev with high > low")
    counts = np.bincount(row * cols + col, minlength=rows * cols).reshape(rows, cols)
    edges = np.arange(lo, hi + bin_width_kev / 2, bin_width_kev)
    spectrum, _ = np.histogram(energy, bins=edges)
    frames = np.unique(frame)
    # distinct pixels hit per frame, from (frame, pixel) pairs
    pairs = np.unique(np.stack([frame.astype(np.int64), row * cols + col]), axis=1)
    n_frames = int(frames.size)
    return EventsPreview(
        counts=counts,
        energy_kev=0.5 * (edges[:-1] + edges[1:]),
        spectrum=spectrum,
        frames_sampled=n_frames,
        events_sampled=int(frame.size),
        events_per_frame=float(frame.size / n_frames),
        occupancy=float(pairs.shape[1] / (n_frames * rows * cols)),
    )


def s_windows_kev(
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
) -> dict[str, list[tuple[float, float]]]:
    """Energy intervals (keV) of the S-parameter's |p_z| windows, both signs of p_z.

    ``{"low": [(e1, e2)], "high": [(e1, e2), (e3, e4)]}``: the low-momentum window straddles
    the Compton peak; the high-momentum window is two bands on either side of it.
    """
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}

    def band(a: float, b: float) -> tuple[float, float]:
        e = sorted(float(v) for v in energy_from_pz(np.array([a, b]), **kw))
        return e[0], e[1]

    lo0, lo1 = low_window_au
    hi0, hi1 = high_window_au
    return {
        "low": [band(-lo1, lo1)] if lo0 == 0 else [band(-lo1, -lo0), band(lo0, lo1)],
        "high": [band(-hi1, -hi0), band(hi0, hi1)],
    }
