"""Compton kinematics: scattered photon energy and electron momentum p_z (paper Eqs. 5-6).

Shared by the Compton analysis, the synthetic detector model and the digital twin.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ELECTRON_REST_ENERGY_KEV",
    "FINE_STRUCTURE_INVERSE",
    "compton_energy_kev",
    "pz_from_energy",
    "dpz_denergy",
    "energy_from_pz",
    "klein_nishina_factor",
]

ELECTRON_REST_ENERGY_KEV = 510.99895
#: p_z / (m c) times this gives p_z in atomic units (1 / alpha).
FINE_STRUCTURE_INVERSE = 137.035999


def compton_energy_kev(incident_kev: float = 115.0, angle_deg: float = 90.0) -> float:
    """Energy of a photon Compton-scattered by an electron at rest.

    ``E2 = E1 / (1 + (E1 / mc^2)(1 - cos theta))``; 93.87 keV for 115 keV at 90 deg.
    """
    cos_t = np.cos(np.deg2rad(angle_deg))
    return float(incident_kev / (1.0 + incident_kev / ELECTRON_REST_ENERGY_KEV * (1.0 - cos_t)))


def pz_from_energy(
    energy_kev: ArrayLike, *, incident_kev: float = 115.0, angle_deg: float = 90.0
) -> np.ndarray:
    """Electron momentum projection p_z in atomic units for scattered energy ``energy_kev``.

    Implements the paper's Eq. 6 (impulse approximation):
    ``p_z / mc = (E2 - E1 + E1 E2 (1 - cos theta) / mc^2) / sqrt(E1^2 + E2^2 - 2 E1 E2 cos theta)``.
    Negative p_z lies below the Compton peak energy.
    """
    e2 = np.asarray(energy_kev, dtype=np.float64)
    e1 = float(incident_kev)
    cos_t = np.cos(np.deg2rad(angle_deg))
    numerator = e2 - e1 + e1 * e2 * (1.0 - cos_t) / ELECTRON_REST_ENERGY_KEV
    denominator = np.sqrt(e1**2 + e2**2 - 2.0 * e1 * e2 * cos_t)
    return numerator / denominator * FINE_STRUCTURE_INVERSE


def dpz_denergy(
    energy_kev: ArrayLike, *, incident_kev: float = 115.0, angle_deg: float = 90.0
) -> np.ndarray:
    """Jacobian d p_z / d E2 in atomic units per keV (analytic derivative of Eq. 6).

    Counts per unit energy N(E2) become J(p_z) per unit p_z as ``N(E2) / (dp_z/dE2)``.
    """
    e2 = np.asarray(energy_kev, dtype=np.float64)
    e1 = float(incident_kev)
    cos_t = np.cos(np.deg2rad(angle_deg))
    numerator = e2 - e1 + e1 * e2 * (1.0 - cos_t) / ELECTRON_REST_ENERGY_KEV
    d_numerator = 1.0 + e1 * (1.0 - cos_t) / ELECTRON_REST_ENERGY_KEV
    denominator = np.sqrt(e1**2 + e2**2 - 2.0 * e1 * e2 * cos_t)
    d_denominator = (e2 - e1 * cos_t) / denominator
    derivative = (d_numerator * denominator - numerator * d_denominator) / denominator**2
    return derivative * FINE_STRUCTURE_INVERSE


def energy_from_pz(
    pz_au: ArrayLike, *, incident_kev: float = 115.0, angle_deg: float = 90.0
) -> np.ndarray:
    """Scattered energy in keV for electron momentum ``pz_au`` (inverse of Eq. 6).

    Newton iterations from the Compton line; Eq. 6 is smooth and monotonic over the physical
    range, so a few steps reach machine precision.
    """
    target = np.asarray(pz_au, dtype=np.float64)
    energy = np.full_like(target, compton_energy_kev(incident_kev, angle_deg))
    energy = energy + target / dpz_denergy(energy, incident_kev=incident_kev, angle_deg=angle_deg)
    for _ in range(8):
        residual = pz_from_energy(energy, incident_kev=incident_kev, angle_deg=angle_deg) - target
        energy = energy - residual / dpz_denergy(
            energy, incident_kev=incident_kev, angle_deg=angle_deg
        )
    return energy


def klein_nishina_factor(
    energy_kev: ArrayLike, *, incident_kev: float = 115.0, angle_deg: float = 90.0
) -> np.ndarray:
    """Klein-Nishina cross-section at scattered energy ``energy_kev``, relative to the Compton line.

    Paper Eq. 5 uses ``dsigma_KN / dOmega = (r_e^2 / 2) r^2 (r + 1/r - sin^2 theta)`` with
    ``r = E2 / E1``. Evaluated at the actual scattered energy E2 of a Doppler-broadened photon
    it is the slowly varying factor between counts and the Compton profile
    (``N(E2) dE2 = factor(E2) J(p_z) dp_z``). Normalised to 1 at :func:`compton_energy_kev`, so
    correcting by it changes the shape of J(p_z) across the peak but not its scale.

    Parameters
    ----------
    energy_kev : array_like
        Scattered photon energies E2 in keV, any shape.
    incident_kev, angle_deg : float
        Incident energy E1 (keV) and scattering angle theta (degrees).

    Returns
    -------
    numpy.ndarray
        Dimensionless factor, same shape as ``energy_kev``.
    """
    e1 = float(incident_kev)
    sin2 = np.sin(np.deg2rad(angle_deg)) ** 2

    def cross_section(e2: np.ndarray | float) -> np.ndarray:
        r = np.asarray(e2, dtype=np.float64) / e1
        return r**2 * (r + 1.0 / r - sin2)

    return cross_section(np.asarray(energy_kev, dtype=np.float64)) / cross_section(
        compton_energy_kev(incident_kev, angle_deg)
    )
