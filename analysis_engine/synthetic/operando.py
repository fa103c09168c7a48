"""A synthetic operando acquisition: HEXITEC events whose Li changes at a planted rate.

Each time slice's per-pixel Compton spectra are drawn from profiles whose S-parameter
corresponds (through a linear calibration, by default the paper's Table 2) to
``Li(t) = li0 + rate * t`` of the pixel's region, then turned into events photon by photon.
"""

from __future__ import annotations

import numpy as np

from analysis_engine.compton import DEFAULT_CALIBRATION, LinearCalibration
from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.compton import spectra_for_s_map
from analysis_engine.synthetic.hexitec import SyntheticEvents, generate_events

__all__ = ["operando_events"]


def operando_events(
    regions: np.ndarray,
    li0: np.ndarray,
    rate_per_s: np.ndarray,
    *,
    duration_s: float,
    slice_s: float = 1.0,
    frame_rate_hz: float = 9000.0,
    counts_per_pixel_per_s: float = 40.0,
    bin_width_kev: float = 0.1,
    calibration: LinearCalibration = DEFAULT_CALIBRATION,
    seed: int = 0,
) -> SyntheticEvents:
    """Events of an acquisition whose Li stoichiometry drifts linearly in time per region.

    Parameters
    ----------
    regions
        (rows, cols) labels 1..n; pixel (r, c) follows region ``regions[r, c]``.
    li0, rate_per_s
        (n,) Li (1 - x) at t = 0 and its rate of change, 1/s, per region.
    duration_s, slice_s
        Acquisition length and the step of the planted staircase (Li is constant within a
        slice, at its value at the slice centre), s.
    frame_rate_hz
        Detector frame rate; frame k is at t = k / frame_rate_hz.
    counts_per_pixel_per_s
        Expected Compton photons per pixel per second.
    bin_width_kev
        Energy grid of the underlying spectra, keV.
    calibration
        ``S = A + B (1 - x)`` that turns Li into the planted S.
    seed
        Random seed.

    Returns
    -------
    SyntheticEvents
        keV events sorted by frame (no charge sharing, so every event is one photon).
    """
    regions = np.asarray(regions)
    li0, rate = np.asarray(li0, dtype=float), np.asarray(rate_per_s, dtype=float)
    if regions.ndim != 2 or regions.min() < 1 or regions.max() > li0.size:
        raise EngineInputError(f"regions must be a 2-D map of labels 1..{li0.size}")
    if li0.shape != rate.shape:
        raise EngineInputError("li0 and rate_per_s need one value per region")
    n_slices = int(round(duration_s / slice_s))
    frames_per_slice = int(round(frame_rate_hz * slice_s))
    if n_slices < 1 or frames_per_slice < 1:
        raise EngineInputError("duration_s and slice_s must cover at least one frame")
    bins = np.arange(bin_width_kev / 2, 160.0, bin_width_kev)
    rng = np.random.default_rng(seed)
    counts = np.full(regions.shape, counts_per_pixel_per_s * slice_s)
    parts = []
    for k in range(n_slices):
        li = (li0 + rate * (k + 0.5) * slice_s)[regions - 1]
        expected = spectra_for_s_map(calibration.s_parameter(li), bins, counts_map=counts)
        ev = generate_events(
            bins, np.clip(expected, 0, None), n_frames=frames_per_slice, fwhm_kev=1e-3,
            sharing_fraction=0.0, rows=regions.shape[0], cols=regions.shape[1],
            seed=int(rng.integers(1 << 30)),
        )  # fmt: skip
        parts.append((ev.frame + np.uint32(k * frames_per_slice), ev.row, ev.col, ev.energy_kev))
    frame, row, col, energy = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return SyntheticEvents(
        frame=frame, row=row, col=col, energy_kev=energy, adu=None, gain_kev_per_adu=None,
        offset_kev=None, n_frames=n_slices * frames_per_slice,
        true_histograms=None, counts={"photons": int(frame.size)},
    )  # fmt: skip
