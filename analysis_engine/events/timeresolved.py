"""Time-resolved (operando) maps: an acquisition re-binned in time, and per-region Li(t).

An event list carries the frame number of every event; at the detector's frame rate that is a
time stamp. Cutting the list at frame boundaries into slices of ``slice_s`` seconds and
clustering each slice with the batch rules gives one spectra cube per slice; the S-parameter
and the Li stoichiometry (paper Eqs. 7-9, Table 2 calibration) of each slice and region follow,
and a weighted straight-line fit gives the rate of change of Li with its uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis_engine.compton import DEFAULT_CALIBRATION, LinearCalibration, s_parameter
from analysis_engine.errors import EngineInputError
from analysis_engine.events.clustering import EnergyBinning, SpectrumAccumulator

__all__ = ["LiOfTime", "li_of_time", "time_resolved_spectra"]


def time_resolved_spectra(
    frame: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    energy_kev: np.ndarray,
    *,
    frame_rate_hz: float,
    slice_s: float,
    bin_width_kev: float = 0.1,
    range_kev: tuple[float, float] = (0.0, 160.0),
    charge_sharing: str = "paper",
    rows: int = 80,
    cols: int = 80,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel spectra of consecutive time slices of one acquisition.

    Parameters
    ----------
    frame, row, col, energy_kev
        (n,) event list sorted by frame; time of an event = frame / ``frame_rate_hz``.
    frame_rate_hz
        Detector frame rate, Hz (HEXITEC: up to 9000).
    slice_s
        Slice length, s; slices hold whole frames (frame k is in slice
        ``floor(k / (frame_rate_hz * slice_s))``).
    bin_width_kev, range_kev, charge_sharing, rows, cols
        As for the ``events`` command.

    Returns
    -------
    t_centres_s : numpy.ndarray
        (n_slices,) centre time of each slice, s.
    energy_bins_kev : numpy.ndarray
        (n_bins,) bin centres.
    cubes : numpy.ndarray
        (n_slices, rows, cols, n_bins) uint32 counts.

    Raises
    ------
    EngineInputError
        Non-positive rate or slice length, unsorted frames, an empty list.
    """
    if frame_rate_hz <= 0 or slice_s <= 0:
        raise EngineInputError("frame_rate_hz and slice_s must be positive")
    frame = np.asarray(frame)
    if frame.size == 0:
        raise EngineInputError("the event list is empty: nothing to slice in time")
    frames_per_slice = frame_rate_hz * slice_s
    if frames_per_slice < 1:
        raise EngineInputError(
            f"slice of {slice_s} s is shorter than one frame at {frame_rate_hz} Hz"
        )
    slice_of_event = np.floor(frame / frames_per_slice).astype(np.int64)
    n_slices = int(slice_of_event[-1]) + 1
    cuts = np.searchsorted(slice_of_event, np.arange(n_slices + 1), side="left")
    binning = EnergyBinning(range_kev[0], range_kev[1], bin_width_kev)
    cubes = np.zeros((n_slices, rows, cols, binning.n_bins), dtype=np.uint32)
    for i in range(n_slices):
        a, b = cuts[i], cuts[i + 1]
        acc = SpectrumAccumulator(binning, charge_sharing=charge_sharing, rows=rows, cols=cols)
        acc.add_events(frame[a:b], row[a:b], col[a:b], energy_kev[a:b])
        cubes[i] = acc.result().pixel_histograms
    t_centres_s = (np.arange(n_slices) + 0.5) * slice_s
    return t_centres_s, binning.centres, cubes


@dataclass(frozen=True)
class LiOfTime:
    """Li stoichiometry (1 - x) per region and time slice, and its fitted rate.

    Attributes
    ----------
    t_s : (n_slices,) slice centres, s.
    li, li_sigma : (n_regions, n_slices) Li and its Poisson standard deviation.
    rate_per_s, rate_sigma_per_s : (n_regions,) slope of a weighted straight-line fit of Li(t)
        and its standard error.
    """

    t_s: np.ndarray
    li: np.ndarray
    li_sigma: np.ndarray
    rate_per_s: np.ndarray
    rate_sigma_per_s: np.ndarray


def li_of_time(
    t_s: np.ndarray,
    energy_bins_kev: np.ndarray,
    cubes: np.ndarray,
    *,
    regions: np.ndarray,
    calibration: LinearCalibration = DEFAULT_CALIBRATION,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
) -> LiOfTime:
    """Li(t) of every labelled region from time-sliced spectra, with a fitted rate.

    Parameters
    ----------
    t_s, energy_bins_kev, cubes
        As returned by :func:`time_resolved_spectra`.
    regions
        (rows, cols) integer labels 1..n (0 = not in any region); the spectra of a region's
        pixels are summed before S is computed.
    calibration, incident_kev, angle_deg
        As for :func:`analysis_engine.compton.s_parameter`; ``S = A + B (1 - x)``.

    Returns
    -------
    LiOfTime
    """
    regions = np.asarray(regions)
    if regions.shape != cubes.shape[1:3]:
        raise EngineInputError(
            f"regions has shape {regions.shape}; expected {cubes.shape[1:3]} (one label per pixel)"
        )
    labels = [int(v) for v in np.unique(regions) if v > 0]
    if not labels:
        raise EngineInputError("regions labels no pixel (all zero)")
    summed = np.stack(
        [cubes[:, regions == label, :].sum(axis=1, dtype=np.float64) for label in labels]
    )  # (n_regions, n_slices, n_bins)
    maps = s_parameter(summed, energy_bins_kev, incident_kev=incident_kev, angle_deg=angle_deg)
    li = calibration.stoichiometry(maps.s)
    li_sigma = calibration.stoichiometry_sigma(maps.s_sigma)
    rates, rate_sigmas = [], []
    for y, s in zip(li, li_sigma, strict=True):
        ok = np.isfinite(y) & np.isfinite(s) & (s > 0)
        if ok.sum() < 2:
            rates.append(np.nan)
            rate_sigmas.append(np.nan)
            continue
        w = 1.0 / s[ok] ** 2
        x = np.asarray(t_s, dtype=np.float64)[ok]
        sw, sx, sy = w.sum(), (w * x).sum(), (w * y[ok]).sum()
        sxx, sxy = (w * x * x).sum(), (w * x * y[ok]).sum()
        det = sw * sxx - sx * sx
        rates.append((sw * sxy - sx * sy) / det)
        rate_sigmas.append(np.sqrt(sw / det))
    return LiOfTime(
        t_s=np.asarray(t_s, dtype=np.float64),
        li=li,
        li_sigma=li_sigma,
        rate_per_s=np.array(rates),
        rate_sigma_per_s=np.array(rate_sigmas),
    )
