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
    """Fitted circuit parameters (ohm, F, ohm s^-1/2), their one-standard-deviation
    uncertainties (same units, from the fit's covariance scaled by the residual variance) and
    the relative RMS residual."""

    r_e_ohm: float
    r_ct_ohm: float
    c_dl_f: float
    sigma_ohm_s05: float
    relative_rms: float
    r_e_sigma_ohm: float = float("nan")
    r_ct_sigma_ohm: float = float("nan")
    c_dl_sigma_f: float = float("nan")
    sigma_sigma_ohm_s05: float = float("nan")
    n_points: int = 0

    def impedance(self, frequency_hz: ArrayLike) -> np.ndarray:
        """The fitted circuit's impedance at ``frequency_hz`` (ohm, complex)."""
        return randles_warburg_impedance(
            frequency_hz,
            r_e_ohm=self.r_e_ohm,
            r_ct_ohm=self.r_ct_ohm,
            c_dl_f=self.c_dl_f,
            sigma_ohm_s05=self.sigma_ohm_s05,
        )


MIN_EIS_POINTS = 6
#: A fit worse than this (relative RMS of Z) describes another circuit, not this one.
MAX_RELATIVE_RMS = 0.15
_NAMES = ("R_e", "R_CT", "C", "Warburg sigma")


def _model(f: np.ndarray, p: np.ndarray) -> np.ndarray:
    # The closed form without the sign checks of randles_warburg_impedance, so the unbounded
    # refinement can cross zero and the caller can report a non-physical optimum.
    omega = 2.0 * np.pi * f
    r_e, r_ct, c, s = p
    return r_e + r_ct / (1.0 + 1j * omega * r_ct * c) + s * (1.0 - 1j) / np.sqrt(omega)


def fit_randles_warburg(frequency_hz: ArrayLike, z_ohm: ArrayLike) -> RandlesFit:
    """Least-squares fit of R_e + (R_CT || C) + Warburg to a measured spectrum.

    Residuals are relative (divided by |Z|) so every decade counts alike. A first fit in log
    space (all parameters positive) gives the start of an unbounded refinement; if that
    refinement's optimum has a negative parameter the circuit does not describe the data and
    the fit is refused rather than clipped. Uncertainties are the square roots of the diagonal
    of ``s^2 (J^T J)^-1`` at the optimum (s^2: residual variance with 2n - 4 degrees of
    freedom).

    Parameters
    ----------
    frequency_hz : array_like, shape (n,)
    z_ohm : array_like of complex, shape (n,)
        Measured impedance (negative imaginary part for capacitive behaviour).

    Returns
    -------
    RandlesFit

    Raises
    ------
    EngineInputError
        Fewer than 6 points, mismatched lengths, non-finite values, or a non-physical optimum
        (a negative resistance, capacitance or Warburg coefficient).
    ConvergenceError
        The optimiser failed.
    """
    from scipy.optimize import least_squares

    f = np.asarray(frequency_hz, dtype=np.float64).ravel()
    z = np.asarray(z_ohm, dtype=np.complex128).ravel()
    if f.shape != z.shape or f.size < MIN_EIS_POINTS:
        raise EngineInputError(
            f"an EIS fit needs at least {MIN_EIS_POINTS} frequencies with one impedance each "
            f"(got {f.size} frequencies and {z.size} impedances)"
        )
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(z))) or np.any(f <= 0):
        raise EngineInputError("frequencies must be > 0 and impedances finite")
    scale = np.abs(z)
    if np.any(scale == 0):
        raise EngineInputError("the spectrum has points with |Z| = 0 ohm")
    omega = 2 * np.pi * f
    # Starting values from the spectrum's shape.
    r_e0 = max(float(z.real[np.argmax(f)]), 1e-3)
    r_ct0 = max(float(np.ptp(z.real)) / 2.0, 1e-3)
    peak = np.argmax(-z.imag * (z.real < r_e0 + 2 * r_ct0))
    c0 = 1.0 / max(omega[peak] * r_ct0, 1e-12)
    sigma0 = max(float(-z.imag[np.argmin(f)] * np.sqrt(omega.min())) / 2.0, 1e-3)

    def residual(p: np.ndarray) -> np.ndarray:
        diff = (_model(f, p) - z) / scale
        return np.concatenate([diff.real, diff.imag])

    # A few starts a decade apart for the time constant: noise can move the apparent peak of
    # the semicircle, and from a poor start the optimiser can trade R_CT for the Warburg arm.
    # Each start is fitted in log space (positive parameters) and, unbounded, in units of the
    # start, so an optimum with a negative parameter is found rather than clipped away.
    starts = [
        np.array([r_e0, r_ct0 * r_factor, c0 * c_factor, sigma0])
        for c_factor in (1.0, 0.1, 10.0)
        for r_factor in (1.0, 0.3, 3.0)
    ]
    best = None  # (cost, parameters, least-squares result, parameter unit)
    with np.errstate(all="ignore"):

        def refine(unit: np.ndarray) -> None:
            nonlocal best
            lin = least_squares(lambda u: residual(u * unit), np.ones(4), method="lm", max_nfev=300)
            if lin.success and np.isfinite(lin.cost) and (best is None or lin.cost < best[0]):
                best = (lin.cost, lin.x * unit, lin, unit)

        logs = [
            least_squares(
                lambda q: residual(np.exp(np.clip(q, -60.0, 60.0))),
                np.log(start),
                method="lm",
                max_nfev=400,
            )
            for start in starts
        ]
        refine(np.exp(min(logs, key=lambda r: r.cost).x))
        for start in starts[::3]:
            refine(start)
    if best is None:
        raise ConvergenceError("Randles-Warburg fit did not converge from any start")
    _, p, res, p0 = best
    negative = [f"{n} = {v:.3g}" for n, v in zip(_NAMES, p, strict=True) if v < 0]
    if negative:
        raise EngineInputError(
            "non-physical EIS fit: "
            + ", ".join(negative)
            + " < 0; the spectrum is not described by R_e + (R_CT || C) + Warburg"
        )
    dof = max(res.fun.size - 4, 1)
    s2 = float(np.sum(res.fun**2)) / dof
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * s2
        errors = np.sqrt(np.clip(np.diag(cov), 0.0, None)) * np.abs(p0)
    except np.linalg.LinAlgError:
        errors = np.full(4, np.nan)
    rms = float(np.sqrt(np.mean(res.fun**2)))
    if rms > MAX_RELATIVE_RMS:
        raise EngineInputError(
            f"the EIS fit leaves a relative RMS residual of {rms:.0%} (> {MAX_RELATIVE_RMS:.0%}):"
            " the spectrum is not described by R_e + (R_CT || C) + Warburg"
        )
    return RandlesFit(
        r_e_ohm=float(p[0]),
        r_ct_ohm=float(p[1]),
        c_dl_f=float(p[2]),
        sigma_ohm_s05=float(p[3]),
        relative_rms=rms,
        r_e_sigma_ohm=float(errors[0]),
        r_ct_sigma_ohm=float(errors[1]),
        c_dl_sigma_f=float(errors[2]),
        sigma_sigma_ohm_s05=float(errors[3]),
        n_points=int(f.size),
    )
