"""The twin's XCS-I photons: pinhole geometry, resolution spread, tailing, electrolyte scatter.

What a pixel (row r, column c) records before the detector's own response:

- **Cathode** Compton photons, ``N_cath`` of them, with the three-Gaussian profile
  ``J = w G(0.6) + (1 - w - d) G(2.5) + d G(9.0)`` (valence, core, deep core: the deep core gives
  the profile tails beyond the S windows, like the 1s-2p shells of Ni, Mn, Co), at the pixel's
  own scattering angle (:data:`TWIN_GEOMETRY`, beam along the columns). ``w`` is set so that
  the cathode's S at the reference resolution is ``DEFAULT_CALIBRATION(1 - x)``; that S is a
  closed form (erf) of the three widths broadened by the reference resolution in p_z.
- **Electrolyte, carbon and binder** Compton photons, ``N_other``, with their free-atom profile
  (xraylib), in proportion to their electrons: solid carbon and binder, and electrolyte in the
  non-solid share of the pixel (pores, and a ring of electrolyte around the footprint).
- The pixel's resolution: FWHM drawn around 0.85 keV (spread 0.12 keV, clipped to 0.55-1.05),
  applied as a Gaussian blur beyond the 0.5 keV the event generator adds to every hit.
- CdZnTe hole tailing: 1 % of the Compton photons moved into an exponential tail (2 keV) on the
  low-energy side.
The Klein-Nishina factor is left out (the chain does not correct for it by default either).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.signal import lfilter
from scipy.special import erf

from analysis_engine.compton.calibration import DEFAULT_CALIBRATION
from analysis_engine.compton.corrected import DEFAULT_REFERENCE_FWHM_KEV
from analysis_engine.compton.forward import spectrum_from_profile
from analysis_engine.compton.geometry import PAPER_GEOMETRY, pixel_angles_deg
from analysis_engine.compton.kinematics import dpz_denergy
from analysis_engine.compton.matrix import DEFAULT_COMPOSITION
from analysis_engine.compton.profile import bin_edges_from_centres
from analysis_engine.errors import EngineInputError

__all__ = [
    "TWIN_GEOMETRY",
    "WIDTHS_AU",
    "DEEP_FRACTION",
    "DETECTOR_BASE_FWHM_KEV",
    "REFERENCE_FWHM_KEV",
    "COMPTON_ENERGY_KEV",
    "resolution_map",
    "valence_weight",
    "window_integrals",
    "planted_s",
    "other_profile",
    "ComponentBank",
]

TWIN_GEOMETRY = PAPER_GEOMETRY
#: Standard deviations (a.u.) of the valence, core and deep-core Gaussians.
WIDTHS_AU = (0.6, 2.5, 9.0)
DEEP_FRACTION = 0.18
#: Resolution the event generator applies to every hit; pixels get the rest as a pre-blur.
DETECTOR_BASE_FWHM_KEV = 0.5
RESOLUTION_LEVELS_KEV = np.round(np.arange(0.55, 1.0501, 0.05), 3)
REFERENCE_FWHM_KEV = DEFAULT_REFERENCE_FWHM_KEV
TAIL_FRACTION = 0.01
TAIL_DECAY_KEV = 2.0
#: Energy grid (bin centres, keV) of the Compton photons handed to the event generator.
COMPTON_ENERGY_KEV = np.arange(64.0, 114.0, 0.02) + 0.01


def resolution_map(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Per-pixel FWHM at the Compton line (keV), on the 0.05 keV levels the twin simulates."""
    rng = np.random.default_rng(seed)
    raw = np.clip(0.85 + 0.12 * rng.standard_normal(shape), 0.55, 1.05)
    return RESOLUTION_LEVELS_KEV[np.abs(raw[..., None] - RESOLUTION_LEVELS_KEV).argmin(axis=-1)]


def _window_integrals(sigma_au: float, sigma_blur_au: float) -> tuple[float, float]:
    s = np.hypot(sigma_au, sigma_blur_au) * np.sqrt(2.0)
    low = erf(1.0 / s)
    return float(low), float(erf(5.0 / s) - low)


def _reference_blur_au(reference_fwhm_kev: float) -> float:
    line = 115.0 / (1 + 115.0 / 510.99895)
    return reference_fwhm_kev / 2.354820045 * float(dpz_denergy(line))


def window_integrals(
    *, reference_fwhm_kev: float = REFERENCE_FWHM_KEV
) -> tuple[tuple[float, float], ...]:
    """(S_L, S_H) per photon of the valence, core, deep-core and other-phase profiles.

    At the reference resolution expressed in p_z (the blur is a Gaussian in p_z of
    ``FWHM / 2.3548 * dp_z/dE`` at the middle angle's line): erf closed forms for the
    Gaussians, a numerical convolution for the tabulated free-atom profile of the other phases.
    """
    blur = _reference_blur_au(reference_fwhm_kev)
    gaussians = tuple(_window_integrals(w, blur) for w in WIDTHS_AU)
    pz, j = other_profile()
    step = pz[1] - pz[0]
    x = np.arange(-int(6 * blur / step) - 1, int(6 * blur / step) + 2) * step
    kernel = np.exp(-0.5 * (x / blur) ** 2)
    blurred = np.convolve(j, kernel / kernel.sum(), mode="same")
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (blurred[1:] + blurred[:-1]) * step)])
    c = np.interp([-5.0, -1.0, 1.0, 5.0], pz, cumulative)
    other = (float(c[2] - c[1]), float(c[1] - c[0] + c[3] - c[2]))
    return (*gaussians, other)


def valence_weight(s_target: np.ndarray, *, reference_fwhm_kev: float = REFERENCE_FWHM_KEV):
    """Valence weight w giving cathode S = ``s_target`` at the reference resolution (closed form).

    The reference resolution is a width in p_z: ``FWHM / 2.3548 * dp_z/dE`` at the Compton line
    of the middle angle (as the chain defines it).
    """
    blur = _reference_blur_au(reference_fwhm_kev)
    (a_v, b_v), (a_c, b_c), (a_d, b_d) = (_window_integrals(w, blur) for w in WIDTHS_AU)
    d = DEEP_FRACTION
    a0, b0 = (1 - d) * a_c + d * a_d, (1 - d) * b_c + d * b_d
    s = np.asarray(s_target, dtype=np.float64)
    w = (s * b0 - a0) / ((a_v - a_c) - s * (b_v - b_c))
    if np.any((w[np.isfinite(w)] < 0) | (w[np.isfinite(w)] > 1 - d)):
        raise EngineInputError("planted S outside the range of the twin's profile model")
    return w


@functools.lru_cache(maxsize=1)
def other_profile() -> tuple[np.ndarray, np.ndarray]:
    """Free-atom J(p_z) per electron of electrolyte + carbon + binder (25 % porosity mix)."""
    from analysis_engine.compton.theory import atomic_profile

    comp = DEFAULT_COMPOSITION
    pz = np.linspace(-40.0, 40.0, 4001)
    solid_volume = sum(
        w / p.density_g_cm3
        for w, p in zip(
            (comp.nmc_weight_fraction, comp.carbon_weight_fraction, comp.binder_weight_fraction),
            comp.phases,
            strict=True,
        )
    )
    parts = [
        (0.75 * comp.carbon_weight_fraction / solid_volume, comp.phases[1]),
        (0.75 * comp.binder_weight_fraction / solid_volume, comp.phases[2]),
        (0.25 * comp.electrolyte.density_g_cm3, comp.electrolyte),
    ]
    j = np.zeros_like(pz)
    electrons = 0.0
    for grams, phase in parts:
        mass = sum(_MASS[z] * n for z, n in phase.atoms.items())
        for z, n in phase.atoms.items():
            v, c = atomic_profile(z, pz)
            j += grams / mass * n * (v + c)
        electrons += grams * phase.electrons_per_gram
    return pz, j / electrons


_MASS = {1: 1.008, 3: 6.94, 6: 12.011, 8: 15.999, 9: 18.998, 15: 30.974}


def _gaussian(sigma: float):
    return lambda p: np.exp(-0.5 * (np.asarray(p) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def _hole_tail(spectrum: np.ndarray, step_kev: float) -> np.ndarray:
    """Move TAIL_FRACTION of the photons into an exponential tail below their energy."""
    a = np.exp(-step_kev / TAIL_DECAY_KEV)
    # y[i] = sum_{j > i} x[j] a^(j - i) (1 - a): photons landing below their true energy
    reverse = lfilter([0.0, 1.0 - a], [1.0, -a], spectrum[::-1])[::-1]
    return (1 - TAIL_FRACTION) * spectrum + TAIL_FRACTION * reverse


class ComponentBank:
    """Unit-area Compton spectra per (detector column, resolution level) on COMPTON_ENERGY_KEV.

    Components: valence, core, deep core (cathode) and other (electrolyte, carbon, binder).
    """

    def __init__(self, cols: int, rows: int = 80) -> None:
        edges = bin_edges_from_centres(COMPTON_ENERGY_KEV)
        angles = pixel_angles_deg(TWIN_GEOMETRY, (rows, cols))[0]
        step = float(COMPTON_ENERGY_KEV[1] - COMPTON_ENERGY_KEV[0])
        profiles = [_gaussian(w) for w in WIDTHS_AU] + [other_profile()]
        n_lev = RESOLUTION_LEVELS_KEV.size
        self.bank = np.zeros((cols, n_lev, 4, COMPTON_ENERGY_KEV.size))
        for c, angle in enumerate(angles):
            for k, prof in enumerate(profiles):
                sharp = spectrum_from_profile(
                    edges,
                    prof,
                    incident_kev=TWIN_GEOMETRY.incident_energy_kev,
                    angle_deg=float(angle),
                    klein_nishina=False,
                )
                for lev, fwhm in enumerate(RESOLUTION_LEVELS_KEV):
                    sigma = np.sqrt(fwhm**2 - DETECTOR_BASE_FWHM_KEV**2) / 2.354820045
                    x = np.arange(-int(6 * sigma / step) - 1, int(6 * sigma / step) + 2) * step
                    kernel = np.exp(-0.5 * (x / sigma) ** 2)
                    blurred = np.convolve(sharp, kernel / kernel.sum(), mode="same")
                    self.bank[c, lev, k] = _hole_tail(blurred, step)

    def spectra(
        self,
        weight_valence: np.ndarray,
        n_cathode: np.ndarray,
        n_other: np.ndarray,
        fwhm_kev: np.ndarray,
    ) -> np.ndarray:
        """Expected photons (rows, cols, n_energy) for per-pixel weights and counts."""
        lev = np.abs(fwhm_kev[..., None] - RESOLUTION_LEVELS_KEV).argmin(axis=-1)
        cols = np.broadcast_to(np.arange(fwhm_kev.shape[1]), fwhm_kev.shape)
        comp = self.bank[cols, lev]  # (rows, cols, 4, n)
        w = np.where(np.isfinite(weight_valence), weight_valence, 0.0)
        d = DEEP_FRACTION
        mix = np.stack([w, 1 - d - w, np.full_like(w, d)], axis=-1)
        cathode = np.einsum("rck,rckn->rcn", mix, comp[:, :, :3])
        return n_cathode[..., None] * cathode + n_other[..., None] * comp[:, :, 3]


def planted_s(one_minus_x: np.ndarray) -> np.ndarray:
    """Cathode S at the reference resolution for Li stoichiometry (1 - x) (default calibration)."""
    return DEFAULT_CALIBRATION.s_parameter(one_minus_x)
