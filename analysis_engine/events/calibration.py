"""Per-pixel energy calibration of the HEXITEC detector from lines of known energy.

Each pixel converts ADU to keV linearly, ``E = gain * adu + offset`` (``SCIENCE.md``, "Event
processing"). Gain and offset are fitted per pixel from peaks of known energy in a calibration
measurement (Am-241 59.54 keV and 26.34 keV, Cd/Te fluorescence, ...); each peak is fitted
with a Gaussian on a flat background by Poisson-weighted Levenberg-Marquardt, vectorised over
all pixels. The FWHM of the first named line is reported per pixel (the paper quotes
0.79 +- 0.15 keV at 59.54 keV) and dead or noisy pixels are masked. Because the Compton
valence window is only about one FWHM wide, the gain can be refined per pixel so the 115 keV
elastic line of the data lands where it should.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "AM241_LINES_KEV",
    "CalibrationFit",
    "PeakFit",
    "fit_calibration",
    "fit_peaks",
    "refine_gain_on_line",
]

#: Am-241 gamma lines (keV) usable for calibration.
AM241_LINES_KEV = (59.5409, 26.3446)
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class PeakFit:
    """Gaussian + flat background fitted per pixel; arrays of shape (rows, cols).

    ``centre`` and ``sigma`` are in the histogram's x units (ADU or keV), ``amplitude`` and
    ``background`` in counts per bin, ``centre_error`` the 1-sigma statistical error of the
    centre, ``ok`` whether the fit converged to a sensible peak.
    """

    centre: np.ndarray
    sigma: np.ndarray
    amplitude: np.ndarray
    background: np.ndarray
    centre_error: np.ndarray
    ok: np.ndarray


@dataclass(frozen=True)
class CalibrationFit:
    """Result of :func:`fit_calibration`; per-pixel arrays have shape (rows, cols).

    Attributes
    ----------
    gain_kev_per_adu, offset_kev
        ``E = gain * adu + offset``; NaN where the pixel is masked.
    fwhm_kev
        FWHM of the first calibration line, keV.
    bad_pixels
        True for dead, noisy or unfittable pixels.
    peaks
        One :class:`PeakFit` per line, in ADU.
    summary
        ``pixels_masked``, the counts per reason, and median gain / offset / FWHM.
    """

    gain_kev_per_adu: np.ndarray
    offset_kev: np.ndarray
    fwhm_kev: np.ndarray
    bad_pixels: np.ndarray
    peaks: tuple[PeakFit, ...]
    summary: dict[str, Any] = field(default_factory=dict)


def _check_cube(x: np.ndarray, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    hist = np.asarray(hist)
    if hist.ndim != 3 or x.ndim != 1 or hist.shape[2] != x.shape[0]:
        raise EngineInputError(
            f"histograms must be (rows, cols, n_bins) matching {x.shape} bin centres, got "
            f"{hist.shape}"
        )
    if x.shape[0] < 8 or not np.all(np.diff(x) > 0):
        raise EngineInputError("bin centres must be increasing, with at least 8 bins")
    return x, hist


def fit_peaks(
    bin_centres: np.ndarray,
    histograms: np.ndarray,
    *,
    centre_guess: np.ndarray,
    sigma_guess: np.ndarray | float,
    half_window: float,
    iterations: int = 30,
) -> PeakFit:
    """Fit one Gaussian + flat background per pixel, all pixels at once.

    Parameters
    ----------
    bin_centres
        (n_bins,) increasing, uniform spacing (ADU or keV).
    histograms
        (rows, cols, n_bins) counts.
    centre_guess
        (rows, cols) initial peak positions; the fit window is centred here.
    sigma_guess
        Initial Gaussian sigma (scalar or (rows, cols)), same units as ``bin_centres``.
    half_window
        Half-width of the fit window, same units.

    Returns
    -------
    PeakFit
    """
    x, hist = _check_cube(bin_centres, histograms)
    rows, cols, n_bins = hist.shape
    step = x[1] - x[0]
    guess = np.broadcast_to(np.asarray(centre_guess, dtype=np.float64), (rows, cols)).ravel()
    sig0 = np.broadcast_to(np.asarray(sigma_guess, dtype=np.float64), (rows, cols)).ravel()
    width = max(5, int(round(2 * half_window / step)) + 1)
    if width > n_bins:
        raise EngineInputError("fit window is wider than the histogram")
    finite = np.isfinite(guess)
    first = np.round((np.where(finite, guess, x[0]) - x[0]) / step).astype(np.int64) - width // 2
    first = np.clip(first, 0, n_bins - width)
    idx = first[:, None] + np.arange(width)[None, :]
    y = np.take_along_axis(hist.reshape(-1, n_bins), idx, axis=1).astype(np.float64)
    xw = x[idx]
    # starting values from the window itself
    bg = np.minimum(y[:, :3].mean(axis=1), y[:, -3:].mean(axis=1))
    amp = np.maximum(y.max(axis=1) - bg, 1.0)
    mu = np.where(finite, guess, xw.mean(axis=1))
    sig = np.where(sig0 > 0, sig0, 2 * step)
    p = np.stack([amp, mu, sig, bg], axis=1)
    lam = np.full(len(p), 1e-3)

    def model_jac(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, m, s, b = (p[:, i : i + 1] for i in range(4))
        z = (xw - m) / s
        g = np.exp(-0.5 * z * z)
        f = a * g + b
        jac = np.stack([g, a * g * z / s, a * g * z * z / s, np.ones_like(g)], axis=2)
        return f, jac

    def cost(f: np.ndarray) -> np.ndarray:
        return np.sum((y - f) ** 2 / np.maximum(f, 1.0), axis=1)

    f, jac = model_jac(p)
    c = cost(f)
    for _ in range(iterations):
        w = 1.0 / np.maximum(f, 1.0)
        jtw = jac * w[:, :, None]
        h = np.einsum("pki,pkj->pij", jtw, jac)
        grad = np.einsum("pki,pk->pi", jtw, y - f)
        diag = np.einsum("pii->pi", h)
        h_damped = h + (lam[:, None] * np.maximum(diag, 1e-12))[:, :, None] * np.eye(4)
        try:
            delta = np.linalg.solve(h_damped, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = np.zeros_like(p)
        trial = p + delta
        trial[:, 2] = np.abs(trial[:, 2]) + 1e-9
        f_t, jac_t = model_jac(trial)
        c_t = cost(f_t)
        better = np.isfinite(c_t) & (c_t <= c)
        p = np.where(better[:, None], trial, p)
        f = np.where(better[:, None], f_t, f)
        jac = np.where(better[:, None, None], jac_t, jac)
        c = np.where(better, c_t, c)
        lam = np.where(better, lam * 0.3, lam * 10.0)
    w = 1.0 / np.maximum(f, 1.0)
    h = np.einsum("pki,pkj->pij", jac * w[:, :, None], jac)
    with np.errstate(invalid="ignore", divide="ignore"):
        try:
            cov_mu = np.linalg.inv(h)[:, 1, 1]
        except np.linalg.LinAlgError:
            cov_mu = np.full(len(p), np.nan)
    mu_err = np.sqrt(np.where(cov_mu > 0, cov_mu, np.nan))
    lo, hi = xw[:, 0], xw[:, -1]
    ok = (
        np.isfinite(p).all(axis=1)
        & (p[:, 0] > 0)
        & (p[:, 1] > lo)
        & (p[:, 1] < hi)
        & (p[:, 2] > 0.2 * step)
        & (p[:, 2] < (hi - lo) / 2)
        & np.isfinite(mu_err)
    )
    shape = (rows, cols)
    return PeakFit(
        centre=p[:, 1].reshape(shape),
        sigma=p[:, 2].reshape(shape),
        amplitude=p[:, 0].reshape(shape),
        background=p[:, 3].reshape(shape),
        centre_error=mu_err.reshape(shape),
        ok=ok.reshape(shape),
    )


def fit_calibration(
    adu_centres: np.ndarray,
    adu_histograms: np.ndarray,
    *,
    lines_kev: tuple[float, ...] = AM241_LINES_KEV,
    nominal_gain_kev_per_adu: np.ndarray | float,
    nominal_offset_kev: np.ndarray | float = 0.0,
    search_kev: float = 3.0,
    fwhm_guess_kev: float = 0.8,
    dead_fraction: float = 0.1,
    noisy_factor: float = 5.0,
    fwhm_factor: float = 2.5,
) -> CalibrationFit:
    """Fit per-pixel gain and offset from peaks of known energy.

    Parameters
    ----------
    adu_centres
        (n_bins,) ADU bin centres, uniform.
    adu_histograms
        (rows, cols, n_bins) single-pixel-cluster counts per ADU bin of a calibration
        measurement (use charge sharing ``discriminate`` so shared events do not blur peaks).
    lines_kev
        Known line energies present in the measurement. Two or more fit gain and offset
        (weighted least squares); a single line fits the gain with the offset held at
        ``nominal_offset_kev``. The first line's width gives the reported FWHM.
    nominal_gain_kev_per_adu, nominal_offset_kev
        Approximate calibration (scalar or (rows, cols)) used only to find each line: the
        peak is looked for within ``search_kev`` of where the nominal calibration puts it.
    dead_fraction, noisy_factor
        A pixel with fewer than ``dead_fraction`` or more than ``noisy_factor`` times the
        median total counts is masked as dead or noisy.
    fwhm_factor
        A pixel whose FWHM exceeds this times the median FWHM is masked as noisy.

    Returns
    -------
    CalibrationFit

    Raises
    ------
    EngineInputError
        No lines, non-positive nominal gain, a line outside the histogram, or no pixel with a
        fittable peak.
    """
    x, hist = _check_cube(adu_centres, adu_histograms)
    rows, cols, _ = hist.shape
    lines = tuple(float(e) for e in lines_kev)
    if not lines:
        raise EngineInputError("name at least one calibration line energy (keV)")
    g0 = np.broadcast_to(np.asarray(nominal_gain_kev_per_adu, dtype=np.float64), (rows, cols))
    o0 = np.broadcast_to(np.asarray(nominal_offset_kev, dtype=np.float64), (rows, cols))
    if not np.all(np.isfinite(g0)) or np.any(g0 <= 0):
        raise EngineInputError("nominal gain must be positive and finite for every pixel")
    totals = hist.sum(axis=2, dtype=np.int64)
    median_total = float(np.median(totals))
    if median_total <= 0:
        raise EngineInputError("the calibration histograms are empty")
    step = x[1] - x[0]
    sigma_guess = fwhm_guess_kev / _FWHM_PER_SIGMA / g0
    peaks = []
    for energy in lines:
        predicted = (energy - o0) / g0
        if np.median(predicted) < x[0] or np.median(predicted) > x[-1]:
            raise EngineInputError(
                f"line {energy} keV falls outside the ADU histogram ({x[0]:.0f}..{x[-1]:.0f} "
                "ADU) for the nominal calibration"
            )
        search = search_kev / g0
        centre = _smoothed_argmax(x, hist, predicted, search, sigma_guess)
        fit = fit_peaks(
            x,
            hist,
            centre_guess=centre,
            sigma_guess=sigma_guess,
            half_window=float(np.median(4.0 * sigma_guess + 2 * step)),
        )
        # refit centred on the first result so the window is symmetric about the peak
        fit = fit_peaks(
            x,
            hist,
            centre_guess=np.where(fit.ok, fit.centre, centre),
            sigma_guess=np.where(fit.ok, fit.sigma, sigma_guess),
            half_window=float(np.median(4.0 * np.where(fit.ok, fit.sigma, sigma_guess))),
        )
        peaks.append(fit)

    adu = np.stack([p.centre for p in peaks], axis=-1)
    err = np.stack([p.centre_error for p in peaks], axis=-1)
    ok_all = np.all(np.stack([p.ok for p in peaks], axis=-1), axis=-1)
    e = np.asarray(lines)
    if len(lines) == 1:
        gain = (e[0] - o0) / adu[..., 0]
        offset = np.array(o0, dtype=np.float64)
    else:
        w = 1.0 / np.where(np.isfinite(err) & (err > 0), err, np.inf) ** 2
        sw, sx, sy = w.sum(-1), (w * adu).sum(-1), (w * e).sum(-1)
        sxx, sxy = (w * adu * adu).sum(-1), (w * adu * e).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            det = sw * sxx - sx * sx
            gain = (sw * sxy - sx * sy) / det
            offset = (sy - gain * sx) / sw
    fwhm = _FWHM_PER_SIGMA * peaks[0].sigma * gain

    dead = totals < dead_fraction * median_total
    noisy = totals > noisy_factor * median_total
    unfit = ~ok_all | ~np.isfinite(gain) | ~np.isfinite(offset) | (gain <= 0)
    good = ~(dead | noisy | unfit)
    if not np.any(good):
        raise EngineInputError(
            f"no pixel shows fittable peaks at {', '.join(f'{v:g}' for v in lines)} keV: "
            "check the line energies and the nominal calibration"
        )
    median_fwhm = float(np.median(fwhm[good]))
    median_gain = float(np.median(gain[good]))
    broad = good & (fwhm > fwhm_factor * median_fwhm)
    odd_gain = good & (np.abs(gain / median_gain - 1.0) > 0.3)
    bad = ~good | broad | odd_gain
    gain = np.where(bad, np.nan, gain)
    offset = np.where(bad, np.nan, offset)
    fwhm = np.where(bad, np.nan, fwhm)
    summary = {
        "lines_kev": list(lines),
        "pixels_masked": int(bad.sum()),
        "pixels_dead": int(dead.sum()),
        "pixels_noisy": int((noisy | broad).sum()),
        "pixels_unfittable": int((unfit & ~dead & ~noisy).sum()),
        "pixels_odd_gain": int(odd_gain.sum()),
        "median_gain_kev_per_adu": float(np.nanmedian(gain)),
        "median_offset_kev": float(np.nanmedian(offset)),
        "median_fwhm_kev": float(np.nanmedian(fwhm)),
    }
    return CalibrationFit(gain, offset, fwhm, bad, tuple(peaks), summary)


def _smoothed_argmax(
    x: np.ndarray,
    hist: np.ndarray,
    predicted: np.ndarray,
    search: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """Per pixel, the position of the highest point of the smoothed histogram near a guess."""
    from scipy.ndimage import gaussian_filter1d

    step = x[1] - x[0]
    smooth = gaussian_filter1d(
        hist.astype(np.float32), sigma=max(1.0, float(np.median(sigma)) / step), axis=2
    )
    inside = np.abs(x[None, None, :] - predicted[..., None]) <= search[..., None]
    smooth = np.where(inside, smooth, -1.0)
    return x[np.argmax(smooth, axis=2)]


def refine_gain_on_line(
    adu_centres: np.ndarray,
    adu_histograms: np.ndarray,
    *,
    gain_kev_per_adu: np.ndarray,
    offset_kev: np.ndarray,
    line_kev: float = 115.0,
    search_kev: float = 2.0,
    fwhm_guess_kev: float = 0.8,
) -> tuple[np.ndarray, PeakFit]:
    """Rescale each pixel's gain so a known line (the 115 keV elastic line) lands on it.

    The offset is kept; the new gain is ``(line_kev - offset) / adu_peak`` with ``adu_peak``
    the fitted ADU centre of the line in this pixel's single-pixel spectrum.

    Parameters
    ----------
    adu_centres, adu_histograms
        (n_bins,) and (rows, cols, n_bins): ADU spectra of the data holding the line.
    gain_kev_per_adu, offset_kev
        (rows, cols) current calibration; NaN pixels stay NaN.

    Returns
    -------
    (gain, fit)
        Refined (rows, cols) gain (the old gain where the line could not be fitted) and the
        :class:`PeakFit` of the line in ADU.
    """
    x, hist = _check_cube(adu_centres, adu_histograms)
    gain = np.asarray(gain_kev_per_adu, dtype=np.float64)
    offset = np.asarray(offset_kev, dtype=np.float64)
    usable = np.isfinite(gain) & np.isfinite(offset) & (gain > 0)
    g = np.where(usable, gain, np.nanmedian(gain[usable]) if usable.any() else 1.0)
    o = np.where(usable, offset, 0.0)
    predicted = (line_kev - o) / g
    sigma = fwhm_guess_kev / _FWHM_PER_SIGMA / g
    centre = _smoothed_argmax(x, hist, predicted, search_kev / g, sigma)
    fit = fit_peaks(
        x, hist, centre_guess=centre, sigma_guess=sigma, half_window=float(np.median(4 * sigma))
    )
    fit = fit_peaks(
        x,
        hist,
        centre_guess=np.where(fit.ok, fit.centre, centre),
        sigma_guess=np.where(fit.ok, fit.sigma, sigma),
        half_window=float(np.median(4.0 * np.where(fit.ok, fit.sigma, sigma))),
    )
    refined = np.where(fit.ok & usable, (line_kev - o) / fit.centre, gain)
    return refined, fit
