"""S-parameter maps of real spectra: per-pixel angle, background, resolution and bad pixels.

Every correction here is linear in the counts, so each pixel's S_L, S_H and their Poisson
variances are still one weighted sum over its bins (``counts @ weights``):

- **Geometry.** Each pixel has its own scattering angle (:mod:`.geometry`); its windows
  ``|p_z| < 1`` and ``1 < |p_z| < 5`` a.u. map to its own energy intervals (Eq. 6). Pixels that
  share an angle (a detector column for ``beam_axis="col"``) share one weight matrix.
- **Background.** A straight line in energy is fitted (least squares) to the counts in two side
  bands, ``band_low < |p_z| < band_high`` a.u. (default 12-17 a.u., 10-16 keV from the line, far
  beyond the windows and beyond where any NMC811 core profile still has weight above 1e-3 of
  its peak after blurring, so the fit does not take the core-electron tails for background),
  and its integral over each window is subtracted. The fit is linear in the counts, so the
  subtraction folds into the window weights, and the variance ``counts @ weights**2`` includes
  the background fit's own noise. Or a measured background spectrum (an empty cell, a position
  beside the sample) is scaled to each pixel's side bands and subtracted the same way.
- **Resolution.** With a per-pixel FWHM map, every spectrum is blurred to a common reference
  resolution (Gaussian of ``sqrt(F_ref^2 - F_pixel^2)``) before the windows are applied; the
  blur is applied to the window weights instead of the counts (a symmetric kernel is its own
  adjoint), with the bin integral of the erf in closed form. Pixels broader than the reference
  cannot be sharpened and are flagged.
- **Bad pixels.** Dead pixels (no counts) and noisy ones (far above their neighbours) are
  flagged and NaN.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage as ndi
from scipy.special import ndtr

from analysis_engine.compton.forward import ProfileLike, as_profile_callable
from analysis_engine.compton.kinematics import (
    ELECTRON_REST_ENERGY_KEV,
    dpz_denergy,
    pz_from_energy,
)
from analysis_engine.compton.profile import (
    DEFAULT_HIGH_WINDOW_AU,
    DEFAULT_LOW_WINDOW_AU,
    FLAG_LOW_COUNTS,
    _cumulative_weights,
    bin_edges_from_centres,
    window_energy_intervals,
)
from analysis_engine.errors import EngineInputError

__all__ = [
    "DEFAULT_BACKGROUND_BAND_AU",
    "DEFAULT_REFERENCE_FWHM_KEV",
    "FLAG_BAD_PIXEL",
    "FLAG_RESOLUTION",
    "CorrectedSMaps",
    "corrected_s_parameter",
    "find_bad_pixels",
    "blurred_window_weights",
    "OFFSET_QUANTUM_KEV",
]

#: Side bands of the background fit, ``low < |p_z| < high`` in atomic units.
DEFAULT_BACKGROUND_BAND_AU = (12.0, 17.0)
#: Common resolution S maps are brought to by ``compton`` when a FWHM map is known (keV at the
#: middle angle): above the paper's 0.79 +- 0.15 keV at 59.5 keV scaled to the Compton line.
DEFAULT_REFERENCE_FWHM_KEV = 1.1
#: Flag bits added to those of :mod:`.profile`.
FLAG_BAD_PIXEL = 8
FLAG_RESOLUTION = 16
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class CorrectedSMaps:
    """Result of :func:`corrected_s_parameter`; arrays have the spectra's leading shape.

    Attributes
    ----------
    s, s_sigma : numpy.ndarray
        Corrected S and its Poisson error (background-fit noise included); NaN where flagged.
    low_integral, high_integral : numpy.ndarray
        Background-subtracted S_L and S_H (counts).
    background_low, background_high : numpy.ndarray
        Background counts subtracted from each window.
    background_per_kev : numpy.ndarray
        The fitted background at the pixel's Compton line, counts per keV.
    window_counts : numpy.ndarray
        Raw counts in ``|p_z| < high_window[1]``.
    s_uncorrected_resolution : numpy.ndarray
        S with background and geometry but without the resolution correction (equal to ``s``
        when no FWHM map was given); the difference is the correction's size.
    angle_deg : numpy.ndarray
        Scattering angle used per pixel.
    flags : numpy.ndarray
        uint8 bits (:data:`FLAG_LOW_COUNTS`, :data:`FLAG_BAD_PIXEL`, :data:`FLAG_RESOLUTION`).
    reference_fwhm_kev : float or None
    """

    s: np.ndarray
    s_sigma: np.ndarray
    low_integral: np.ndarray
    high_integral: np.ndarray
    background_low: np.ndarray
    background_high: np.ndarray
    background_per_kev: np.ndarray
    window_counts: np.ndarray
    s_uncorrected_resolution: np.ndarray
    angle_deg: np.ndarray
    flags: np.ndarray
    reference_fwhm_kev: float | None


def _bin_cdf_integral(x: np.ndarray) -> np.ndarray:
    """Antiderivative of the standard normal CDF: x Phi(x) + phi(x)."""
    return x * ndtr(x) + np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def blurred_window_weights(
    edges_kev: ArrayLike, intervals_kev: list[tuple[float, float]], sigma_kev: ArrayLike
) -> np.ndarray:
    """Weight of each bin in a union of energy intervals after a Gaussian blur, per pixel.

    For counts uniform within bin ``[l, u]`` (width D) blurred by a Gaussian of standard
    deviation s, the share landing in ``[a, b]`` is
    ``(s / D) [F((b-l)/s) - F((b-u)/s) - F((a-l)/s) + F((a-u)/s)]`` with ``F`` the
    antiderivative of the normal CDF; at s -> 0 it is the fraction of the bin inside.

    Parameters
    ----------
    edges_kev : array_like, shape (n_bins + 1,)
    intervals_kev : list of (a, b)
    sigma_kev : array_like, shape (m,)
        Blur per pixel (keV, >= 0).

    Returns
    -------
    numpy.ndarray, shape (m, n_bins)
    """
    edges = np.asarray(edges_kev, dtype=np.float64)
    s = np.maximum(np.asarray(sigma_kev, dtype=np.float64), 1e-9)[:, None]
    lo, hi = edges[None, :-1], edges[None, 1:]
    width = hi - lo
    out = np.zeros((s.shape[0], edges.size - 1))
    for a, b in intervals_kev:
        out += (s / width) * (
            _bin_cdf_integral((b - lo) / s)
            - _bin_cdf_integral((b - hi) / s)
            - _bin_cdf_integral((a - lo) / s)
            + _bin_cdf_integral((a - hi) / s)
        )
    return out


def find_bad_pixels(total_counts: ArrayLike, *, noisy_factor: float = 5.0) -> np.ndarray:
    """Dead and noisy pixels from the counts per pixel (rows, cols).

    Dead: no counts. Noisy: more than ``noisy_factor`` times the median of its 5 x 5
    neighbourhood (hot pixels counting noise; a real intensity edge changes by far less
    between neighbours at the 0.27 mm pixel scale) and at least 100 counts.

    Returns
    -------
    numpy.ndarray of bool
    """
    counts = np.asarray(total_counts, dtype=np.float64)
    if counts.ndim != 2:
        raise EngineInputError("bad-pixel search needs a (rows, cols) count map")
    local = ndi.median_filter(counts, size=5, mode="nearest")
    noisy = (counts > noisy_factor * np.maximum(local, 1.0)) & (counts >= 100)
    return (counts <= 0) | noisy


@functools.lru_cache(maxsize=4)
def _nmc811_profile() -> tuple[np.ndarray, np.ndarray]:
    from analysis_engine.compton.theory import compound_profile

    pz = np.linspace(-40.0, 40.0, 4001)
    valence, core = compound_profile(0.5, pz)
    return pz, valence + core


def _tail_callable(profile: ProfileLike | str | None):
    if profile is None or (isinstance(profile, str) and profile == "none"):
        return None
    if isinstance(profile, str):
        if profile != "nmc811":
            raise EngineInputError(
                f"tail_profile must be 'nmc811', 'none' or a profile, got {profile!r}"
            )
        return as_profile_callable(_nmc811_profile())
    return as_profile_callable(profile)


def _tail_inside(tail, p_max: float) -> float:
    key = (id(tail), p_max)
    if key not in _TAIL_AREAS:
        grid = np.linspace(-p_max, p_max, 2001)
        _TAIL_AREAS[key] = float(np.trapezoid(tail(grid), grid))
    return _TAIL_AREAS[key]


_TAIL_AREAS: dict = {}


def _tail_template(
    edges: np.ndarray, tail, p_max: float, *, incident_kev: float, angle_deg: float
) -> np.ndarray:
    """Counts per bin of profile ``tail`` per count inside ``|p_z| < p_max`` (bin centres)."""
    pz_edges = pz_from_energy(edges, incident_kev=incident_kev, angle_deg=angle_deg)
    centres = 0.5 * (pz_edges[1:] + pz_edges[:-1])
    per_bin = tail(centres) * np.diff(pz_edges)
    inside = _tail_inside(tail, p_max)
    if not inside > 0:
        raise EngineInputError("the tail profile has no weight inside the S windows")
    return per_bin / inside


def _energies_for_pz(pz_au: np.ndarray, angles_deg: np.ndarray, incident_kev: float) -> np.ndarray:
    """Eq. 6 inverted for many angles at once: energies (n_angles, n_pz), keV (Newton)."""
    theta = np.asarray(angles_deg, dtype=np.float64)[:, None]
    target = np.asarray(pz_au, dtype=np.float64)[None, :]
    kw = {"incident_kev": incident_kev, "angle_deg": theta}
    line = incident_kev / (
        1.0 + incident_kev / ELECTRON_REST_ENERGY_KEV * (1.0 - np.cos(np.deg2rad(theta)))
    )
    energy = line + target / dpz_denergy(line, **kw)
    for _ in range(8):
        energy = energy - (pz_from_energy(energy, **kw) - target) / dpz_denergy(energy, **kw)
    return energy


def _cumulative_matrix(edges: np.ndarray, energies: np.ndarray, cubic: bool) -> np.ndarray:
    """Rows u with ``u @ counts`` = counts below each energy (as ``profile.window_weights``).

    Linear: counts uniform within a bin; cubic: Lagrange interpolation of the cumulative counts
    through the four nearest bin edges (the profile module's rule, vectorised).
    """
    n_bins = edges.size - 1
    e = np.asarray(energies, dtype=np.float64).ravel()
    out = np.zeros((e.size, n_bins))
    i = np.searchsorted(edges, e, side="right") - 1
    out[e >= edges[-1]] = 1.0
    inner = (e > edges[0]) & (e < edges[-1])
    rows_all = np.flatnonzero(inner)
    bins = np.arange(n_bins)
    interior = inner & (i >= 1) & (i <= n_bins - 2) if cubic else inner
    rows = np.flatnonzero(interior)
    ii = i[rows]
    if cubic:
        x = np.stack([edges[ii - 1], edges[ii], edges[ii + 1], edges[ii + 2]], axis=1)
        ev = e[rows][:, None]
        coeffs = np.ones((rows.size, 4))
        for k in range(4):
            for m in range(4):
                if m != k:
                    coeffs[:, k] *= (ev[:, 0] - x[:, m]) / (x[:, k] - x[:, m])
        out[rows] = (bins[None, :] < (ii - 1)[:, None]).astype(np.float64)
        out[rows, ii - 1] = coeffs[:, 1] + coeffs[:, 2] + coeffs[:, 3]
        out[rows, ii] = coeffs[:, 2] + coeffs[:, 3]
        out[rows, ii + 1] = coeffs[:, 3]
    else:
        frac = (e[rows] - edges[ii]) / (edges[ii + 1] - edges[ii])
        out[rows] = (bins[None, :] < ii[:, None]).astype(np.float64)
        out[rows, ii] = frac
    for r in np.setdiff1d(rows_all, rows):  # first and last bins: the scalar rule
        out[r] = _cumulative_weights(edges, float(e[r]), "cubic" if cubic else "linear")
    return out


def _angle_array(angle_deg: ArrayLike, lead: tuple[int, ...]) -> np.ndarray:
    angle = np.asarray(angle_deg, dtype=np.float64)
    if angle.ndim == 0:
        return np.full(lead, float(angle))
    if angle.shape != lead:
        raise EngineInputError(
            f"angle map has shape {angle.shape} but the spectra have {lead} pixels"
        )
    return angle


def _background_projector(
    edges: np.ndarray, member: np.ndarray, line: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear map counts -> (b0, b1) of the side-band line fit, and the design per bin.

    ``member`` is each bin's share inside the side bands.
    """
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    # counts_i ~ width_i (b0 + b1 (E_i - line)): b0, b1 in counts per keV
    design = np.stack([width, width * (centres - line)], axis=1)
    normal = design.T @ (member[:, None] * design)
    det = normal[0, 0] * normal[1, 1] - normal[0, 1] * normal[1, 0]
    if not det > 1e-12 * (normal[0, 0] + normal[1, 1]) ** 2:
        raise EngineInputError(
            "the background bands hold too few bins to fit a background; widen them or "
            "record a wider energy range"
        )
    inverse = np.array([[normal[1, 1], -normal[0, 1]], [-normal[1, 0], normal[0, 0]]]) / det
    projector = (member[:, None] * design) @ inverse  # (n_bins, 2)
    return projector, design


#: Energy offsets of :func:`corrected_s_parameter` are rounded to this (keV). S changes to second
#: order in a misplacement of the windows about a symmetric profile (measured: 7 % at 0.25 keV),
#: so the rounding error of at most 0.005 keV moves it by under 0.01 %.
OFFSET_QUANTUM_KEV = 0.01


def corrected_s_parameter(
    spectra: ArrayLike,
    energy_bins_kev: ArrayLike,
    *,
    incident_kev: float = 115.0,
    angle_deg: ArrayLike = 90.0,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    background: str | ArrayLike | None = "fit",
    background_band_au: tuple[float, float] = DEFAULT_BACKGROUND_BAND_AU,
    resolution_fwhm_kev: ArrayLike | None = None,
    reference_fwhm_kev: float | None = None,
    tail_profile: ProfileLike | str | None = "nmc811",
    bad_pixels: ArrayLike | None = None,
    min_counts: float = 100.0,
    energy_offset_kev: ArrayLike | None = None,
) -> CorrectedSMaps:
    """S = S_L / S_H per spectrum with geometry, background and resolution corrections.

    Parameters
    ----------
    spectra : array_like, shape (..., n_bins)
        Counts per bin, e.g. (80, 80, n_bins).
    energy_bins_kev : array_like, shape (n_bins,)
        Increasing bin centres, keV.
    incident_kev : float
        Beam energy E1.
    angle_deg : float or array_like of the spectra's leading shape
        Scattering angle per spectrum (see :func:`~.geometry.pixel_angles_deg`).
    low_window_au, high_window_au : (float, float)
        ``|p_z|`` windows of S_L and S_H (Eqs. 8-9).
    background : "fit", None/"none", or array_like (n_bins,)
        ``"fit"``: straight line fitted per spectrum in the side bands; None: no subtraction;
        an array: a measured background spectrum, scaled per spectrum to its side-band counts.
    background_band_au : (float, float)
        ``low < |p_z| < high`` of the side bands (both sides of the line).
    resolution_fwhm_kev : array_like of the leading shape, optional
        Detector FWHM per pixel at the Compton line (keV). When given, every spectrum is
        brought to the common reference resolution.
    reference_fwhm_kev : float, optional
        Common resolution S refers to, in keV at the middle angle of the detector; at other
        angles the target is the same width in p_z (a keV spans fewer a.u. where the line is
        higher). Default: the broadest pixel. Pixels broader than it are flagged
        FLAG_RESOLUTION and keep their uncorrected S.
    tail_profile : "nmc811", callable J(p_z), (pz_au, j) or None
        Compton profile whose tails beyond the windows belong to the sample, not to the
        background: its expected counts in the side bands (scaled to each spectrum's counts in
        ``|p_z| < high``) are taken out before the background line is fitted. Default: the
        free-atom profile of Li0.5Ni0.8Mn0.1Co0.1O2 (core profiles are free-atom-like); without
        it the fit removes about 2.4 % of S with the core tails.
    bad_pixels : array_like of bool, optional
        Pixels to flag FLAG_BAD_PIXEL (NaN).
    min_counts : float
        Spectra with fewer raw counts in the windows are flagged FLAG_LOW_COUNTS (NaN).
    energy_offset_kev : array_like of the leading shape, optional
        Energy-scale error per spectrum (keV): where the recorded axis puts the Compton line
        minus where Eq. 6 puts it (e.g. the fitted peak centre minus the line energy). The
        windows, side bands and p_z scale of that spectrum move with it. Offsets are rounded
        to :data:`OFFSET_QUANTUM_KEV` (spectra sharing an angle and a rounded offset share
        their weights).

    Returns
    -------
    CorrectedSMaps

    Raises
    ------
    EngineInputError
        Shape mismatches, negative counts, a recorded energy range not covering a pixel's
        windows and side bands, a bad background spectrum or FWHM map.
    """
    data = np.asarray(spectra)
    edges = bin_edges_from_centres(energy_bins_kev)
    n_bins = edges.size - 1
    if data.ndim < 1 or data.shape[-1] != n_bins:
        raise EngineInputError(
            f"spectra have {data.shape[-1] if data.ndim else 0} energy bins but the energy axis "
            f"has {n_bins}"
        )
    lead = data.shape[:-1]
    flat = data.reshape(-1, n_bins)
    n_pix = flat.shape[0]
    angles = _angle_array(angle_deg, lead).ravel()
    low = tuple(float(v) for v in low_window_au)
    high = tuple(float(v) for v in high_window_au)
    band = tuple(float(v) for v in background_band_au)
    if isinstance(background, str):
        if background not in ("fit", "none"):
            raise EngineInputError(
                f"background must be 'fit', 'none' or a measured spectrum, got {background!r}"
            )
        mode = background
        measured = None
    elif background is None:
        mode, measured = "none", None
    else:
        measured = np.asarray(background, dtype=np.float64)
        if measured.shape != (n_bins,) or not np.all(np.isfinite(measured)) or measured.min() < 0:
            raise EngineInputError(
                f"a measured background must be a spectrum of {n_bins} finite counts >= 0 on "
                f"the same energy bins, got shape {measured.shape}"
            )
        mode = "measured"
    if mode != "none" and not (high[1] <= band[0] < band[1]):
        raise EngineInputError(
            f"background bands {band} a.u. must lie beyond the S windows (|p_z| > {high[1]:g})"
        )

    tail = _tail_callable(tail_profile) if mode == "fit" else None
    sigma_extra = None
    bad_res = np.zeros(n_pix, dtype=bool)
    reference = None
    if resolution_fwhm_kev is not None:
        fwhm = np.asarray(resolution_fwhm_kev, dtype=np.float64)
        if fwhm.shape != lead:
            raise EngineInputError(
                f"resolution map has shape {fwhm.shape} but the spectra have {lead} pixels"
            )
        fwhm = fwhm.ravel()
        finite = np.isfinite(fwhm) & (fwhm > 0)
        if not finite.any():
            raise EngineInputError("the resolution (FWHM) map has no finite positive entry")
        # a keV of blur is a different width in p_z at each angle: the common reference is a
        # width in p_z, expressed in keV at the middle angle of the detector
        mid = 0.5 * (float(np.nanmin(angles)) + float(np.nanmax(angles)))
        angle_set, angle_of = np.unique(angles, return_inverse=True)
        lines = _energies_for_pz(np.array([0.0]), np.append(angle_set, mid), incident_kev)[:, 0]
        jac_all = dpz_denergy(lines, incident_kev=incident_kev, angle_deg=np.append(angle_set, mid))
        jac, jac_mid = jac_all[:-1][angle_of], jac_all[-1]
        scale = jac_mid / jac  # keV at this pixel per keV at the middle angle
        if reference_fwhm_kev is None:
            reference = float(np.max(fwhm[finite] / scale[finite]))
        else:
            reference = float(reference_fwhm_kev)
        if not reference > 0:
            raise EngineInputError(f"reference FWHM must be > 0 keV, got {reference_fwhm_kev}")
        target = reference * scale
        bad_res = ~finite | (fwhm > target * (1 + 1e-9))
        extra = np.where(bad_res, 0.0, target**2 - np.where(finite, fwhm, 0.0) ** 2)
        sigma_extra = np.sqrt(np.maximum(extra, 0.0)) * _FWHM_TO_SIGMA

    offsets = np.zeros(n_pix)
    if energy_offset_kev is not None:
        offsets = np.broadcast_to(np.asarray(energy_offset_kev, dtype=np.float64), lead).ravel()
        if not np.all(np.isfinite(offsets)):
            raise EngineInputError("the energy offset map has non-finite entries")
        offsets = np.round(offsets / OFFSET_QUANTUM_KEV) * OFFSET_QUANTUM_KEV

    sums = np.zeros((n_pix, 3))  # S_L, S_H, raw window counts
    variances = np.zeros((n_pix, 2))
    sums_plain = np.zeros((n_pix, 2))  # without the resolution correction
    bg_windows = np.zeros((n_pix, 2))
    bg_level = np.zeros(n_pix)
    keys = np.round(angles, 9)
    if not np.all(np.isfinite(keys)):
        raise EngineInputError("the angle map has non-finite entries")
    # one group per (angle, energy offset): they share their window weights
    if energy_offset_kev is None:
        unique, inverse = np.unique(keys, return_inverse=True)
        shift = np.zeros(unique.size)
    else:
        pairs, inverse = np.unique(np.stack([keys, offsets], axis=1), axis=0, return_inverse=True)
        unique, shift = pairs[:, 0], pairs[:, 1]
    inverse = inverse.ravel()
    outer = max(high[1], band[1]) if mode != "none" else high[1]
    # window and band edges of every angle group at once (Eq. 6 inverted)
    pz_nodes = np.array(sorted({-outer, outer, *(-v for v in low + high), *low, *high, 0.0}))
    if mode != "none":
        pz_nodes = np.union1d(pz_nodes, [-band[1], -band[0], band[0], band[1]])
    node_e = _energies_for_pz(pz_nodes, unique, incident_kev) + shift[:, None]  # (groups, nodes)
    lo_needed, hi_needed = node_e[:, 0], node_e[:, -1]
    bad_cover = (edges[0] > lo_needed) | (edges[-1] < hi_needed)
    if bad_cover.any():
        g = int(np.flatnonzero(bad_cover)[0])
        raise EngineInputError(
            f"the recorded energy range {edges[0]:.2f}-{edges[-1]:.2f} keV does not cover "
            f"|p_z| < {outer:g} a.u. ({lo_needed[g]:.2f}-{hi_needed[g]:.2f} keV) at the pixel "
            f"angle {unique[g]:.2f} deg; check scattering_angle_deg and the geometry"
        )
    # every weight lives within the outermost node energies (plus the blur's reach): work on
    # that slice of the bins only; bins below it cancel in every window difference
    reach = 8.0 * float(np.max(sigma_extra)) if sigma_extra is not None else 0.0
    g_lo = max(int(np.searchsorted(edges, node_e.min() - reach)) - 3, 0)
    g_hi = min(int(np.searchsorted(edges, node_e.max() + reach)) + 3, n_bins)
    edges_loc = edges[g_lo : g_hi + 1]
    flat_loc = flat[:, g_lo:g_hi]
    n_loc = g_hi - g_lo
    measured_loc = measured[g_lo:g_hi] if measured is not None else None
    n_nodes = pz_nodes.size
    cum_cubic = _cumulative_matrix(edges_loc, node_e, cubic=True).reshape(unique.size, n_nodes, -1)
    cum_linear = (
        _cumulative_matrix(edges_loc, node_e, cubic=False).reshape(unique.size, n_nodes, -1)
        if mode != "none"
        else None
    )
    node_index = {float(v): k for k, v in enumerate(pz_nodes)}

    def between(cum: np.ndarray, window: tuple[float, float]) -> np.ndarray:
        lo_w, hi_w = window
        u = lambda v: cum[node_index[float(v)]]  # noqa: E731
        if lo_w == 0.0:
            return u(hi_w) - u(-hi_w)
        return (u(-lo_w) - u(-hi_w)) + (u(hi_w) - u(lo_w))

    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inverse, minlength=unique.size))[:-1])
    templates = None
    if mode == "fit" and tail is not None:
        # the sample's own profile per count in |p_z| < high, every group at once (Eq. 6)
        pz_edges = pz_from_energy(
            edges_loc[None, :] - shift[:, None],
            incident_kev=incident_kev,
            angle_deg=unique[:, None],
        )
        mid = 0.5 * (pz_edges[:, 1:] + pz_edges[:, :-1])
        templates = tail(mid) * np.diff(pz_edges, axis=1) / _tail_inside(tail, high[1])
    for g, angle in enumerate(unique):
        rows_g = members[g]
        kw = {"incident_kev": incident_kev, "angle_deg": float(angle)}
        line = float(node_e[g, node_index[0.0]])
        cum = cum_cubic[g]
        sharp = np.stack([between(cum, low), between(cum, high), between(cum, (0.0, high[1]))], 1)
        weights = sharp[:, :2]
        if mode == "fit":
            member = between(cum_linear[g], band)
            projector, design = _background_projector(edges_loc, member, line)
            if tail is not None:
                # the sample's own core-electron tail in the side bands is not background:
                # expected tail counts = template * (counts in |p_z| < high), removed first
                projector = projector - np.outer(sharp[:, 2], templates[g] @ projector)
            # background counts in window k = counts @ projector @ (design.T @ weights[:, k])
            removal = projector @ (design.T @ sharp[:, :2])
            level_w = projector[:, 0]
        elif mode == "measured":
            member = between(cum_linear[g], band)
            in_band = float(measured_loc @ member)
            if in_band <= 0:
                raise EngineInputError(
                    "the measured background has no counts in the side bands "
                    f"{band[0]:g}-{band[1]:g} a.u.: it cannot be scaled to the spectra"
                )
            removal = np.outer(member, measured_loc @ sharp[:, :2]) / in_band
            centre_bin = int(np.clip(np.searchsorted(edges_loc, line) - 1, 0, n_loc - 1))
            level_w = member * measured_loc[centre_bin] / np.diff(edges_loc)[centre_bin] / in_band
        else:
            removal = np.zeros((n_loc, 2))
            level_w = np.zeros(n_loc)
        used = np.flatnonzero(sharp.any(axis=1) | removal.any(axis=1) | (level_w != 0))
        lo_bin, hi_bin = used[0], used[-1] + 1
        if sigma_extra is not None:
            intervals = [
                [(a + shift[g], b + shift[g]) for a, b in window_energy_intervals(w, **kw)]
                for w in (low, high)
            ]
            # the blurred windows reach 8 sigma beyond the sharp ones
            reach = 8.0 * (float(sigma_extra[rows_g].max()) + 1e-9)
            e_lo, e_hi = intervals[1][0][0] - reach, intervals[1][-1][1] + reach
            wide = np.flatnonzero((edges_loc[1:] > e_lo) & (edges_loc[:-1] < e_hi))
            lo_bin, hi_bin = min(wide[0], lo_bin), max(wide[-1] + 1, hi_bin)
        sl = slice(lo_bin, hi_bin)
        blk = np.asarray(flat_loc[rows_g, sl], dtype=np.float64)
        if blk.size and blk.min() < 0:
            raise EngineInputError("spectra contain negative counts; expected counts per bin >= 0")
        net = (weights - removal)[sl]
        plain = blk @ net
        sums_plain[rows_g] = plain
        sums[rows_g, 2] = blk @ sharp[sl, 2]
        bg_windows[rows_g] = blk @ removal[sl]
        bg_level[rows_g] = blk @ level_w[sl]
        if sigma_extra is None:
            sums[rows_g, :2] = plain
            variances[rows_g] = blk @ net**2
            continue
        edges_sl = edges_loc[lo_bin : hi_bin + 1]
        for k in range(2):
            blurred = blurred_window_weights(edges_sl, intervals[k], sigma_extra[rows_g])
            wk = blurred - removal[sl, k][None, :]
            sums[rows_g, k] = np.einsum("ij,ij->i", blk, wk)
            variances[rows_g, k] = np.einsum("ij,ij->i", blk, wk**2)
        broad = bad_res[rows_g]
        if broad.any():
            sums[rows_g[broad], :2] = plain[broad]
            variances[rows_g[broad]] = blk[broad] @ net**2

    a, b = sums[:, 0], sums[:, 1]
    flags = np.zeros(n_pix, dtype=np.uint8)
    low_counts = (sums[:, 2] < min_counts) | (a <= 0) | (b <= 0)
    flags[low_counts] |= FLAG_LOW_COUNTS
    flags[bad_res] |= FLAG_RESOLUTION
    if bad_pixels is not None:
        bad = np.asarray(bad_pixels, dtype=bool)
        if bad.shape != lead:
            raise EngineInputError(
                f"bad-pixel mask has shape {bad.shape} but the spectra have {lead} pixels"
            )
        flags[bad.ravel()] |= FLAG_BAD_PIXEL
    invalid = low_counts | (bad_pixels is not None and np.asarray(bad_pixels, bool).ravel())
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a / b
        sigma = s * np.sqrt(variances[:, 0] / a**2 + variances[:, 1] / b**2)
        s_plain = sums_plain[:, 0] / sums_plain[:, 1]
    s[invalid] = np.nan
    sigma[invalid] = np.nan
    s_plain[invalid] = np.nan

    def shaped(x: np.ndarray) -> np.ndarray:
        return x.reshape(lead)

    return CorrectedSMaps(
        s=shaped(s),
        s_sigma=shaped(sigma),
        low_integral=shaped(a),
        high_integral=shaped(b),
        background_low=shaped(bg_windows[:, 0]),
        background_high=shaped(bg_windows[:, 1]),
        background_per_kev=shaped(bg_level),
        window_counts=shaped(sums[:, 2]),
        s_uncorrected_resolution=shaped(s_plain),
        angle_deg=shaped(angles),
        flags=shaped(flags),
        reference_fwhm_kev=reference,
    )
