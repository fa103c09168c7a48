"""Compton profiles J(p_z) and the S-parameter from energy spectra (paper Eqs. 6-9).

Spectra are counts per energy bin. A momentum window ``p_lo < |p_z| < p_hi`` maps through
Eq. 6 onto one or two energy intervals; bins cut by an interval edge contribute the fraction of
their width inside it (exact for counts spread uniformly across a bin), so the window integrals
do not jump when the energy calibration shifts by a fraction of a bin. With
``N(E2) dE2 = f_KN(E2) J(p_z) dp_z`` the integral of J over a p_z window equals the counts in
the matching energy window divided by the slowly varying Klein-Nishina factor f_KN; the
Jacobian dp_z/dE2 is used only where J is wanted per unit p_z (the profile).

The S-parameter reported here is the *measured* one: computed from the spectrum as recorded,
i.e. the true profile convolved with the detector resolution (about 0.8 keV FWHM, almost one
valence window wide). That is how the paper's Table 2 values were obtained and what the default
calibration expects. :func:`analysis_engine.compton.theory.theoretical_s_curve` gives both the
blurred and the unblurred theory values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.compton.kinematics import (
    energy_from_pz,
    klein_nishina_factor,
    pz_from_energy,
)
from analysis_engine.errors import EngineInputError

__all__ = [
    "FLAG_OUTSIDE_MASK",
    "FLAG_LOW_COUNTS",
    "FLAG_FIT_FAILED",
    "FLAG_DESCRIPTIONS",
    "DEFAULT_LOW_WINDOW_AU",
    "DEFAULT_HIGH_WINDOW_AU",
    "SParameterMaps",
    "ComptonProfile",
    "bin_edges_from_centres",
    "window_energy_intervals",
    "window_weights",
    "s_parameter",
    "compton_profile",
]

#: Bits of the per-pixel flag maps (0 = good pixel).
FLAG_OUTSIDE_MASK = 1
FLAG_LOW_COUNTS = 2
FLAG_FIT_FAILED = 4
FLAG_DESCRIPTIONS = {
    FLAG_OUTSIDE_MASK: "outside the mask",
    FLAG_LOW_COUNTS: "too few counts (not fitted, NaN)",
    FLAG_FIT_FAILED: "peak fit did not converge or left the fit window",
}

DEFAULT_LOW_WINDOW_AU = (0.0, 1.0)
DEFAULT_HIGH_WINDOW_AU = (1.0, 5.0)


@dataclass(frozen=True)
class SParameterMaps:
    """S-parameter per spectrum (paper Eqs. 7-9); arrays have the spectra's leading shape.

    Attributes
    ----------
    s, s_sigma : numpy.ndarray
        S = S_L / S_H and its Poisson standard deviation; NaN where flagged.
    low_integral, high_integral : numpy.ndarray
        S_L and S_H: counts in the low and high momentum windows (divided by the
        Klein-Nishina factor when that correction is on).
    window_counts : numpy.ndarray
        Counts inside ``|p_z| < high_window[1]`` (the Compton intensity image).
    flags : numpy.ndarray
        uint8 bit map, see ``FLAG_DESCRIPTIONS``.
    """

    s: np.ndarray
    s_sigma: np.ndarray
    low_integral: np.ndarray
    high_integral: np.ndarray
    window_counts: np.ndarray
    flags: np.ndarray


@dataclass(frozen=True)
class ComptonProfile:
    """A Compton profile J(p_z) sampled at the energy bins of a spectrum.

    Attributes
    ----------
    pz_au : numpy.ndarray, shape (m,)
        p_z (atomic units) at the bin centres, increasing.
    j, j_sigma : numpy.ndarray, shape (m,)
        J(p_z) per unit p_z and its Poisson standard deviation; normalised so that the integral
        over ``|p_z| < high_window[1]`` is 1 when ``normalised`` is true, else counts per a.u.
    energy_kev : numpy.ndarray, shape (m,)
        The bin centres the samples come from.
    normalised : bool
    """

    pz_au: np.ndarray
    j: np.ndarray
    j_sigma: np.ndarray
    energy_kev: np.ndarray
    normalised: bool


def bin_edges_from_centres(energy_bins_kev: ArrayLike) -> np.ndarray:
    """Bin edges (n + 1,) from strictly increasing bin centres (n,), in keV.

    Interior edges are midpoints between neighbouring centres; the outer edges lie half a
    neighbouring bin width beyond the first and last centre (exact for uniform bins).

    Raises
    ------
    EngineInputError
        Fewer than 2 bins, non-finite or not strictly increasing centres.
    """
    centres = np.asarray(energy_bins_kev, dtype=np.float64)
    if centres.ndim != 1 or centres.size < 2:
        raise EngineInputError(
            f"the energy axis must be a 1D array of at least 2 bin centres, got shape {centres.shape}"
        )
    if not np.all(np.isfinite(centres)) or np.any(np.diff(centres) <= 0):
        raise EngineInputError("the energy axis (bin centres in keV) must be finite and increasing")
    mid = 0.5 * (centres[1:] + centres[:-1])
    first = centres[0] - 0.5 * (centres[1] - centres[0])
    last = centres[-1] + 0.5 * (centres[-1] - centres[-2])
    return np.concatenate([[first], mid, [last]])


def _check_window(window: tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in window)
    if not (0.0 <= lo < hi) or not np.isfinite(hi):
        raise EngineInputError(
            f"{name} must be two momenta 0 <= low < high in atomic units, got {window}"
        )
    return lo, hi


def window_energy_intervals(
    window_au: tuple[float, float], *, incident_kev: float = 115.0, angle_deg: float = 90.0
) -> list[tuple[float, float]]:
    """Energy intervals (keV) covered by ``low < |p_z| < high`` (Eq. 6 inverted).

    One interval when ``low == 0`` (e.g. 92.99-94.76 keV for |p_z| < 1 a.u. at 115 keV and
    90 deg), otherwise two (89.53-92.99 and 94.76-98.38 keV for 1 < |p_z| < 5 a.u.).
    """
    lo, hi = _check_window(window_au, "momentum window")
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    e = energy_from_pz(np.array([-hi, -lo, lo, hi]), **kw)
    if lo == 0.0:
        return [(float(e[0]), float(e[3]))]
    return [(float(e[0]), float(e[1])), (float(e[2]), float(e[3]))]


def _cumulative_weights(edges: np.ndarray, energy: float, interpolation: str) -> np.ndarray:
    """Weights u with ``u @ counts`` = cumulative counts below ``energy``.

    The cumulative count C(E) is known exactly at every bin edge; between edges it is
    interpolated linearly (counts uniform within a bin) or by a cubic through the four nearest
    edges (an area-preserving parabolic density, exact for quadratic count densities).
    """
    n_bins = edges.size - 1
    u = np.zeros(n_bins)
    if energy <= edges[0]:
        return u
    if energy >= edges[-1]:
        return u + 1.0
    i = int(np.searchsorted(edges, energy, side="right")) - 1
    if interpolation == "linear":
        nodes = np.array([i, i + 1])
    else:
        nodes = np.arange(max(i - 1, 0), min(i + 2, n_bins) + 1)
    x = edges[nodes]
    coeffs = np.array(
        [
            np.prod([(energy - x[m]) / (x[k] - x[m]) for m in range(x.size) if m != k])
            for k in range(x.size)
        ]
    )
    u[: nodes[0]] = 1.0
    # C(edge k) = sum of counts in bins m < k, so bin m gets the coefficients of nodes k > m
    for m in range(nodes[0], nodes[-1]):
        u[m] = coeffs[nodes > m].sum()
    return u


def window_weights(
    edges_kev: ArrayLike,
    windows_au: list[tuple[float, float]] | tuple[tuple[float, float], ...],
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    klein_nishina: bool = False,
    interpolation: str = "cubic",
) -> np.ndarray:
    """Weight of every energy bin in every momentum window, shape (n_bins, n_windows).

    ``counts @ weights`` gives the integrals of J(p_z) over the windows (Eqs. 8-9) in counts.
    Bins wholly inside a window weigh 1; a bin cut by a window edge contributes the part of
    its counts below/above the edge, found by interpolating the (exactly known) cumulative
    counts at the edge energy: ``"linear"`` assumes counts uniform within the bin (weight =
    fraction of the bin's width inside), ``"cubic"`` (default) follows the local slope and
    curvature of the spectrum through the four nearest bin edges, which removes the bias of
    the uniform assumption on the steep flanks of the valence peak (a few % of S for
    0.25 keV bins). With ``klein_nishina`` each weight is divided by the Klein-Nishina
    factor at the bin centre.

    Parameters
    ----------
    edges_kev : array_like, shape (n_bins + 1,)
        Increasing bin edges in keV.
    windows_au : sequence of (low, high)
        Momentum windows ``low < |p_z| < high`` in atomic units.
    interpolation : {"cubic", "linear"}
    """
    if interpolation not in {"cubic", "linear"}:
        raise EngineInputError(f"interpolation must be 'cubic' or 'linear', got {interpolation!r}")
    edges = np.asarray(edges_kev, dtype=np.float64)
    weights = np.zeros((edges.size - 1, len(windows_au)))
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    for k, window in enumerate(windows_au):
        for a, b in window_energy_intervals(window, **kw):
            weights[:, k] += _cumulative_weights(edges, b, interpolation) - _cumulative_weights(
                edges, a, interpolation
            )
    if klein_nishina:
        weights /= klein_nishina_factor(0.5 * (edges[1:] + edges[:-1]), **kw)[:, None]
    return weights


def _require_coverage(edges: np.ndarray, high_window: tuple[float, float], kw: dict) -> None:
    needed = energy_from_pz(np.array([-high_window[1], high_window[1]]), **kw)
    if edges[0] > needed[0] or edges[-1] < needed[1]:
        raise EngineInputError(
            f"the spectra's energy range {edges[0]:.2f}-{edges[-1]:.2f} keV does not cover both "
            f"momentum windows: |p_z| < {high_window[1]:g} a.u. needs "
            f"{needed[0]:.2f}-{needed[1]:.2f} keV at {kw['incident_kev']:g} keV, "
            f"{kw['angle_deg']:g} deg"
        )


def s_parameter(
    spectra: ArrayLike,
    energy_bins_kev: ArrayLike,
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    klein_nishina: bool = False,
    min_counts: float = 100.0,
    interpolation: str = "cubic",
) -> SParameterMaps:
    """S-parameter of every spectrum: S = S_L / S_H (paper Eqs. 7-9), vectorised.

    Parameters
    ----------
    spectra : array_like, shape (..., n_bins)
        Counts per energy bin (any integer or float dtype, non-negative), e.g. (80, 80, n).
    energy_bins_kev : array_like, shape (n_bins,)
        Bin centres in keV, increasing.
    incident_kev, angle_deg : float
        Beam energy and scattering angle for Eq. 6.
    low_window_au, high_window_au : (float, float)
        ``|p_z|`` ranges of S_L and S_H in atomic units (paper: 0-1 and 1-5).
    klein_nishina : bool
        Divide counts by the relative Klein-Nishina factor (Eq. 5) before integrating.
    min_counts : float
        Spectra with fewer counts than this in the two windows together (or none in either)
        are flagged ``FLAG_LOW_COUNTS`` and get NaN instead of a noisy S.
    interpolation : {"cubic", "linear"}
        How bins cut by a window edge are split (see :func:`window_weights`).

    Returns
    -------
    SParameterMaps
        ``s_sigma`` is the Poisson error ``S sqrt(var S_L / S_L^2 + var S_H / S_H^2)`` with
        ``var = sum(weight^2 counts)``, i.e. ``sigma_S / S = sqrt(1/A + 1/B)`` for whole bins.

    Raises
    ------
    EngineInputError
        Shape mismatch, negative counts, or an energy range not covering both windows.
    """
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    low = _check_window(low_window_au, "low momentum window")
    high = _check_window(high_window_au, "high momentum window")
    data = np.asarray(spectra)
    edges = bin_edges_from_centres(energy_bins_kev)
    if data.ndim < 1 or data.shape[-1] != edges.size - 1:
        raise EngineInputError(
            f"spectra have {data.shape[-1] if data.ndim else 0} energy bins but the energy axis "
            f"has {edges.size - 1}"
        )
    _require_coverage(edges, high, kw)
    weights = window_weights(
        edges, [low, high], klein_nishina=klein_nishina, interpolation=interpolation, **kw
    )
    # the intensity image is plain counts in |p_z| < high[1]
    counts_w = window_weights(edges, [(0.0, high[1])], interpolation=interpolation, **kw)
    weights = np.concatenate([weights, counts_w], axis=1)
    used = np.flatnonzero(weights.any(axis=1))
    sl = slice(used[0], used[-1] + 1)
    lead = data.shape[:-1]
    block = np.asarray(data.reshape(-1, data.shape[-1])[:, sl], dtype=np.float64)
    if block.size and block.min() < 0:
        raise EngineInputError("spectra contain negative counts; expected counts per bin >= 0")
    w = weights[sl]
    sums = block @ w
    variances = block @ (w[:, :2] ** 2)
    a, b, total = sums[:, 0], sums[:, 1], sums[:, 2]
    flags = np.zeros(a.shape, dtype=np.uint8)
    low_counts = (a + b < min_counts) | (a <= 0) | (b <= 0)
    flags[low_counts] |= FLAG_LOW_COUNTS
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a / b
        sigma = s * np.sqrt(variances[:, 0] / a**2 + variances[:, 1] / b**2)
    s[low_counts] = np.nan
    sigma[low_counts] = np.nan
    return SParameterMaps(
        s=s.reshape(lead),
        s_sigma=sigma.reshape(lead),
        low_integral=a.reshape(lead),
        high_integral=b.reshape(lead),
        window_counts=total.reshape(lead),
        flags=flags.reshape(lead),
    )


def compton_profile(
    spectrum: ArrayLike,
    energy_bins_kev: ArrayLike,
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    pz_max_au: float = 8.0,
    klein_nishina: bool = False,
    normalise: bool = True,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
) -> ComptonProfile:
    """Compton profile J(p_z) per unit p_z from one spectrum (Eq. 6 + its Jacobian).

    ``J_i = N_i / (|dp_z| of bin i) / f_KN(E_i)`` at ``p_z(E_i)`` for the bins whose centre has
    ``|p_z| <= pz_max_au``.

    Parameters
    ----------
    spectrum : array_like, shape (n_bins,)
        Counts per bin, e.g. the spectrum summed over a region's mask.
    energy_bins_kev : array_like, shape (n_bins,)
        Bin centres in keV.
    normalise : bool
        Scale J so that its integral over ``|p_z| < high_window_au[1]`` (exact partial bins)
        is 1; otherwise J is in counts per atomic unit.

    Raises
    ------
    EngineInputError
        Shape mismatch, negative counts, a range not covering the windows or an empty window.
    """
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    counts = np.asarray(spectrum, dtype=np.float64)
    edges = bin_edges_from_centres(energy_bins_kev)
    centres = np.asarray(energy_bins_kev, dtype=np.float64)
    if counts.shape != centres.shape:
        raise EngineInputError(
            f"spectrum has shape {counts.shape} but the energy axis has {centres.size} bins"
        )
    if np.any(counts < 0):
        raise EngineInputError("spectrum contains negative counts")
    high = _check_window(high_window_au, "high momentum window")
    _require_coverage(edges, high, kw)
    pz_edges = pz_from_energy(edges, **kw)
    pz = pz_from_energy(centres, **kw)
    keep = np.abs(pz) <= pz_max_au
    dpz = np.diff(pz_edges)[keep]
    factor = klein_nishina_factor(centres[keep], **kw) if klein_nishina else 1.0
    j = counts[keep] / dpz / factor
    j_sigma = np.sqrt(counts[keep]) / dpz / factor
    if normalise:
        area = float(
            counts
            @ window_weights(edges, [(0.0, high[1])], klein_nishina=klein_nishina, **kw)[:, 0]
        )
        if area <= 0:
            raise EngineInputError(
                f"no counts inside |p_z| < {high[1]:g} a.u.: cannot normalise the Compton profile"
            )
        j, j_sigma = j / area, j_sigma / area
    return ComptonProfile(
        pz_au=pz[keep], j=j, j_sigma=j_sigma, energy_kev=centres[keep], normalised=normalise
    )
