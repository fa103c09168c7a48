"""The EIS equivalent circuit of the paper: R_e + (R_CT || C) + Warburg, and D_overall.

``Z(omega) = R_e + R_CT / (1 + i omega R_CT C) + sigma omega^(-1/2) (1 - i)``, with the
Warburg coefficient ``sigma = R T / (sqrt(2) n^2 F^2 A c sqrt(D))`` (semi-infinite diffusion
of one species), so ``D = (R T / (sqrt(2) n^2 F^2 A c sigma))^2``. Huang et al. 2022 report
D_overall = 6.3e-11 (DIT) and 3.4e-11 cm^2/s (slurry-cast) from this circuit. Impedances are in
ohm with the measured sign convention (capacitive = negative imaginary part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.errors import ConvergenceError, EngineInputError

__all__ = [
    "RandlesFit",
    "randles_warburg_impedance",
    "warburg_from_diffusivity",
    "diffusivity_from_warburg",
    "fit_randles_warburg",
    "DEFAULT_AREA_CM2",
    "DEFAULT_CONCENTRATION_MOL_CM3",
]

GAS_CONSTANT = 8.314462618  # J / (mol K)
FARADAY = 96485.33212  # C / mol
#: Electrode area of a 12 mm disc (cm^2) and the Li+ concentration of a 1 M electrolyte
#: (mol/cm^3): the defaults used to turn a Warburg coefficient into a diffusivity.
DEFAULT_AREA_CM2 = 1.131
DEFAULT_CONCENTRATION_MOL_CM3 = 1.0e-3


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise EngineInputError(f"{name} must be a positive number, got {value}")


def randles_warburg_impedance(
    frequency_hz: ArrayLike,
    *,
    r_e_ohm: float,
    r_ct_ohm: float,
    c_dl_f: float,
    sigma_ohm_s05: float,
) -> np.ndarray:
    """Impedance of R_e + (R_CT || C) + Warburg.

    Parameters
    ----------
    frequency_hz : array_like, shape (n,)
        Frequencies, Hz (> 0).
    r_e_ohm, r_ct_ohm : float
        Electrolyte and charge-transfer resistances, ohm.
    c_dl_f : float
        Double-layer capacitance, F.
    sigma_ohm_s05 : float
        Warburg coefficient, ohm s^-1/2.

    Returns
    -------
    numpy.ndarray of complex, shape (n,)
        Z in ohm (imaginary part negative for capacitive behaviour).
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    if f.size == 0 or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise EngineInputError("frequencies must be finite and > 0 Hz")
    _check_positive(r_ct_ohm=r_ct_ohm, c_dl_f=c_dl_f)
    if not (r_e_ohm >= 0 and sigma_ohm_s05 >= 0):
        raise EngineInputError("r_e_ohm and sigma_ohm_s05 must be >= 0")
    omega = 2.0 * np.pi * f
    return (
        r_e_ohm
        + r_ct_ohm / (1.0 + 1j * omega * r_ct_ohm * c_dl_f)
        + sigma_ohm_s05 * (1.0 - 1j) / np.sqrt(omega)
    )


def warburg_from_diffusivity(
    d_cm2_s: float,
    *,
    area_cm2: float = DEFAULT_AREA_CM2,
    concentration_mol_cm3: float = DEFAULT_CONCENTRATION_MOL_CM3,
    temperature_k: float = 298.15,
    electrons: int = 1,
) -> float:
    """Warburg coefficient (ohm s^-1/2) of diffusivity ``d_cm2_s`` (cm^2/s)."""
    _check_positive(d_cm2_s=d_cm2_s, area_cm2=area_cm2, concentration_mol_cm3=concentration_mol_cm3)
    rt = GAS_CONSTANT * temperature_k
    return float(
        rt
        / (np.sqrt(2.0) * electrons**2 * FARADAY**2 * area_cm2 * concentration_mol_cm3)
        / np.sqrt(d_cm2_s)
    )


def diffusivity_from_warburg(
    sigma_ohm_s05: float,
    *,
    area_cm2: float = DEFAULT_AREA_CM2,
    concentration_mol_cm3: float = DEFAULT_CONCENTRATION_MOL_CM3,
    temperature_k: float = 298.15,
    electrons: int = 1,
) -> float:
    """Diffusivity (cm^2/s) from a Warburg coefficient (inverse of
    :func:`warburg_from_diffusivity`)."""
    _check_positive(sigma_ohm_s05=sigma_ohm_s05)
    unit = warburg_from_diffusivity(
        1.0,
        area_cm2=area_cm2,
        concentration_mol_cm3=concentration_mol_cm3,
        temperature_k=temperature_k,
        electrons=electrons,
    )
    return float((unit / sigma_ohm_s05) ** 2)


@dataclass(frozen=True)
class RandlesFit:
    """Fitted circuit parameters (ohm, F, ohm s^-1/2) and the relative RMS residual."""

    r_e_ohm: float
    r_ct_ohm: float
    c_dl_f: float
    sigma_ohm_s05: float
    relative_rms: float


def fit_randles_warburg(frequency_hz: ArrayLike, z_ohm: ArrayLike) -> RandlesFit:
    """Least-squares fit of R_e + (R_CT || C) + Warburg to a measured spectrum.

    Residuals are relative (divided by |Z|) so every decade counts alike; parameters are fitted
    in log space (all positive).

    Parameters
    ----------
    frequency_hz : array_like, shape (n,)
    z_ohm : array_like of complex, shape (n,)
        Measured impedance (negative imaginary part for capacitive behaviour).

    Raises
    ------
    EngineInputError
        Fewer than 6 points, mismatched lengths, non-finite values.
    ConvergenceError
        The optimiser failed.
    """
    from scipy.optimize import least_squares

    f = np.asarray(frequency_hz, dtype=np.float64).ravel()
    z = np.asarray(z_ohm, dtype=np.complex128).ravel()
    if f.shape != z.shape or f.size < 6:
        raise EngineInputError(
            f"need at least 6 frequencies with one impedance each (got {f.size} and {z.size})"
        )
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(z))) or np.any(f <= 0):
        raise EngineInputError("frequencies must be > 0 and impedances finite")
    scale = np.abs(z)
    omega = 2 * np.pi * f
    # Starting values from the spectrum's shape.
    r_e0 = max(float(z.real[np.argmax(f)]), 1e-3)
    r_ct0 = max(float(np.ptp(z.real)) / 2.0, 1e-3)
    peak = np.argmax(-z.imag * (z.real < r_e0 + 2 * r_ct0))
    c0 = 1.0 / max(omega[peak] * r_ct0, 1e-12)
    sigma0 = max(float(-z.imag[np.argmin(f)] * np.sqrt(omega.min())) / 2.0, 1e-3)

    def residual(logp: np.ndarray) -> np.ndarray:
        r_e, r_ct, c, s = np.exp(logp)
        model = randles_warburg_impedance(f, r_e_ohm=r_e, r_ct_ohm=r_ct, c_dl_f=c, sigma_ohm_s05=s)
        diff = (model - z) / scale
        return np.concatenate([diff.real, diff.imag])

    start = np.log([r_e0, r_ct0, c0, sigma0])
    res = least_squares(residual, start, method="lm", max_nfev=4000)
    if not res.success:
        raise ConvergenceError(f"Randles-Warburg fit did not converge: {res.message}")
    r_e, r_ct, c, s = np.exp(res.x)
    rms = float(np.sqrt(np.mean(res.fun**2)))
    return RandlesFit(float(r_e), float(r_ct), float(c), float(s), rms)
