"""Synthetic Compton spectra with a planted S-parameter (digital twin and tests).

A model profile is a mix of a narrow "valence" Gaussian and a broad "core" Gaussian in p_z,
``J = w G(p; sigma_v) + (1 - w) G(p; sigma_c)``, each with unit area. Because S_L and S_H
(Eqs. 8-9) are linear in w, the weight that gives any S between the pure-core and pure-valence
values is found in closed form, for the true profile (``s_of="true"``) or for the spectrum as
the detector measures it after resolution blurring (``s_of="measured"``, what the paper's
Table 2 reports and what :func:`analysis_engine.compton.s_parameter` returns).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erf

from analysis_engine.compton.forward import ProfileLike, spectrum_from_profile
from analysis_engine.compton.profile import (
    DEFAULT_HIGH_WINDOW_AU,
    DEFAULT_LOW_WINDOW_AU,
    bin_edges_from_centres,
    window_weights,
)
from analysis_engine.errors import EngineInputError

__all__ = [
    "VALENCE_WIDTH_AU",
    "CORE_WIDTH_AU",
    "valence_weight_for_s",
    "profile_for_s_parameter",
    "expected_counts",
    "spectra_for_s_map",
]

#: Standard deviations (atomic units) of the two model components.
VALENCE_WIDTH_AU = 0.6
CORE_WIDTH_AU = 2.5


def _gaussian(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: np.exp(-0.5 * (np.asarray(p) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _gaussian_window_integrals(
    sigma: float, low: tuple[float, float], high: tuple[float, float]
) -> tuple[float, float]:
    def inside(p_lo: float, p_hi: float) -> float:  # integral over p_lo < |p| < p_hi
        s = sigma * np.sqrt(2.0)
        return float(erf(p_hi / s) - erf(p_lo / s))

    return inside(*low), inside(*high)


def _solve_weight(s: np.ndarray, a_v: float, b_v: float, a_c: float, b_c: float) -> np.ndarray:
    s_lo, s_hi = a_c / b_c, a_v / b_v
    s = np.asarray(s, dtype=np.float64)
    if np.any(~np.isfinite(s)) or np.any(s <= s_lo) or np.any(s >= s_hi):
        raise EngineInputError(
            f"S-parameter targets must lie strictly between {s_lo:.3f} and {s_hi:.3f} for this "
            f"profile model (got {np.nanmin(s):.3f}..{np.nanmax(s):.3f})"
        )
    # S = (w a_v + (1 - w) a_c) / (w b_v + (1 - w) b_c), solved for w
    return (s * b_c - a_c) / ((a_v - a_c) - s * (b_v - b_c))


def valence_weight_for_s(
    s_target: ArrayLike,
    *,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    valence_width_au: float = VALENCE_WIDTH_AU,
    core_width_au: float = CORE_WIDTH_AU,
) -> np.ndarray:
    """Valence weight w of the two-Gaussian model whose true profile has S = ``s_target``."""
    a_v, b_v = _gaussian_window_integrals(valence_width_au, low_window_au, high_window_au)
    a_c, b_c = _gaussian_window_integrals(core_width_au, low_window_au, high_window_au)
    return _solve_weight(np.asarray(s_target), a_v, b_v, a_c, b_c)


def profile_for_s_parameter(
    s_target: float,
    *,
    pz_au: ArrayLike | None = None,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    valence_width_au: float = VALENCE_WIDTH_AU,
    core_width_au: float = CORE_WIDTH_AU,
) -> np.ndarray | Callable[[np.ndarray], np.ndarray]:
    """A smooth, symmetric, unit-area Compton profile whose S (Eqs. 7-9) is exactly ``s_target``.

    Parameters
    ----------
    s_target : float
        The S-parameter of the continuous profile (before any detector blurring); must lie
        between the pure-core (about 0.48) and pure-valence (about 9.5) values.
    pz_au : array_like, optional
        Momenta (a.u.) at which to sample J. Without it a callable ``J(pz_au)`` is returned.

    Returns
    -------
    numpy.ndarray or callable
        J(p_z) per atomic unit.
    """
    w = float(
        valence_weight_for_s(
            s_target,
            low_window_au=low_window_au,
            high_window_au=high_window_au,
            valence_width_au=valence_width_au,
            core_width_au=core_width_au,
        )
    )
    valence, core = _gaussian(valence_width_au), _gaussian(core_width_au)

    def j(p: np.ndarray) -> np.ndarray:
        return w * valence(p) + (1.0 - w) * core(p)

    return j if pz_au is None else j(np.asarray(pz_au, dtype=np.float64))


def expected_counts(
    energy_edges_kev: ArrayLike,
    profile: ProfileLike,
    *,
    total_counts: float,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    resolution_fwhm_kev: float = 0.8,
    klein_nishina: bool = True,
) -> np.ndarray:
    """Expected counts per energy bin of the Compton peak of profile J, summing to ``total_counts``.

    Exact bin integrals of ``f_KN(E) J(p_z(E)) dp_z/dE`` convolved with a Gaussian detector
    response (see :func:`analysis_engine.compton.forward.spectrum_from_profile`). A photon
    generator can draw energies from ``counts / counts.sum()``.

    Parameters
    ----------
    energy_edges_kev : array_like, shape (n_bins + 1,)
        Bin edges in keV.
    profile : callable or (pz_au, j)
        J(p_z), e.g. from :func:`profile_for_s_parameter`.
    total_counts : float
        Expected counts over all bins.
    """
    shape = spectrum_from_profile(
        energy_edges_kev,
        profile,
        incident_kev=incident_kev,
        angle_deg=angle_deg,
        resolution_fwhm_kev=resolution_fwhm_kev,
        klein_nishina=klein_nishina,
    )
    total = shape.sum()
    if total <= 0:
        raise EngineInputError("the energy bins hold none of the Compton peak")
    return shape * (float(total_counts) / total)


def spectra_for_s_map(
    s_map: ArrayLike,
    energy_bins_kev: ArrayLike,
    *,
    counts_map: ArrayLike,
    s_of: str = "measured",
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    resolution_fwhm_kev: float = 0.8,
    klein_nishina: bool = True,
    background_per_bin: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Per-pixel Compton spectra with a planted S map, expected or Poisson-drawn.

    Parameters
    ----------
    s_map : array_like, shape (...)
        S-parameter per pixel; NaN pixels get no Compton counts.
    energy_bins_kev : array_like, shape (n_bins,)
        Bin centres in keV (the ``events`` output axis).
    counts_map : array_like, shape (...)
        Expected Compton counts per pixel over all bins.
    s_of : {"measured", "true"}
        Whether ``s_map`` is the S that :func:`analysis_engine.compton.s_parameter` will
        measure from these (blurred, default windows, no KN correction) expected spectra, or
        the S of the underlying true profile.
    background_per_bin : float
        Flat expected background added to every bin.
    rng : numpy.random.Generator, optional
        When given, counts are Poisson draws (uint32); otherwise expected counts (float64).

    Returns
    -------
    numpy.ndarray, shape s_map.shape + (n_bins,)
    """
    s = np.asarray(s_map, dtype=np.float64)
    counts = np.broadcast_to(np.asarray(counts_map, dtype=np.float64), s.shape)
    edges = bin_edges_from_centres(energy_bins_kev)
    kw = {
        "incident_kev": incident_kev,
        "angle_deg": angle_deg,
        "resolution_fwhm_kev": resolution_fwhm_kev,
        "klein_nishina": klein_nishina,
    }
    valence = spectrum_from_profile(edges, _gaussian(VALENCE_WIDTH_AU), **kw)
    core = spectrum_from_profile(edges, _gaussian(CORE_WIDTH_AU), **kw)
    good = np.isfinite(s)
    if s_of == "true":
        w = valence_weight_for_s(s[good])
    elif s_of == "measured":
        win = window_weights(
            edges,
            [DEFAULT_LOW_WINDOW_AU, DEFAULT_HIGH_WINDOW_AU],
            incident_kev=incident_kev,
            angle_deg=angle_deg,
        )
        (a_v, b_v), (a_c, b_c) = valence @ win, core @ win
        w = _solve_weight(s[good], a_v, b_v, a_c, b_c)
    else:
        raise EngineInputError(f"s_of must be 'measured' or 'true', got {s_of!r}")
    out = np.zeros(s.shape + (edges.size - 1,))
    mix = w[:, None] * valence + (1.0 - w[:, None]) * core
    mix *= (counts[good] / mix.sum(axis=1))[:, None]
    out[good] = mix
    out += background_per_bin
    if rng is None:
        return out
    return rng.poisson(out).astype(np.uint32)
