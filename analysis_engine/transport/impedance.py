"""Simulated EIS of a pore volume (paper Eqs. 1-2) and its transmission-line fit (Eqs. 3-4).

Eq. 1, in the pores: ``lap(C) - (i omega / D_e) C = 0``, C = 1 on the inlet face (index 0 of
``axis``), C = 0 on the outlet face, zero normal flux on pore/solid interfaces. The impedance
is the stimulus amplitude over the complex flux entering through the inlet, and Eq. 2
normalises it: ``Z~ = Z A D / L``. In these units a homogeneous medium of porosity eps and
tortuosity factor tau is a uniform RC transmission line shorted at its far end,

    Z~(omega) = R tanh(s) / s,   s = sqrt(i omega theta / omega_c),   omega_c = D_e / L^2,

with ``R = tau / eps`` (Eq. 3 with A_CC K_0 / L the Eq. 2 normalisation) and ``theta = tau``
when the whole pore volume charges. Fitting R gives tau/eps, and Eq. 4 gives
``D_directional = D_e eps / tau``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from analysis_engine.errors import ConvergenceError, EngineInputError
from analysis_engine.transport import _kernels
from analysis_engine.transport._multigrid import AggregationMultigrid, CoarseningStalled
from analysis_engine.transport._volume import check_axis, connected_clusters, pore_mask
from analysis_engine.transport.steady import MULTIGRID_MIN_UNKNOWNS

__all__ = [
    "ImpedanceSpectrum",
    "TransmissionLineFit",
    "simulate_impedance",
    "finite_diffusion_impedance",
    "fit_transmission_line",
    "directional_diffusivity",
    "tau_from_ionic_resistance",
    "D_ELECTROLYTE_CM2_S",
]

#: intrinsic Li+ diffusion coefficient of the liquid electrolyte that reproduces Table 1
D_ELECTROLYTE_CM2_S = 1.39e-7


@dataclass(frozen=True)
class ImpedanceSpectrum:
    """Normalised impedance of a pore volume (Eq. 2).

    Attributes
    ----------
    omega_over_omega_c : numpy.ndarray
        (n,) angular frequencies in units of ``omega_c = D_e / L^2``, ascending.
    z_norm : numpy.ndarray
        (n,) complex normalised impedance ``Z~ = Z A D / L``.
    porosity : float
        Pore fraction of the whole volume.
    axis : int
        Transport axis.
    length_voxels : int
        ``L`` in voxels.
    iterations : numpy.ndarray
        (n,) COCG iterations per frequency.
    """

    omega_over_omega_c: np.ndarray
    z_norm: np.ndarray
    porosity: float
    axis: int
    length_voxels: int
    iterations: np.ndarray


@dataclass(frozen=True)
class TransmissionLineFit:
    """Uniform RC transmission line fitted to a normalised spectrum.

    Attributes
    ----------
    r_ion_norm : float
        Normalised ionic resistance ``R_ion A K_0 / L`` = tau / eps (Eq. 3).
    theta : float
        Time constant ``R_ion C_dl`` in units of ``1 / omega_c``.
    tau : float
        ``r_ion_norm * porosity``.
    porosity : float
    rms_relative_error : float
        RMS of ``|Z_fit - Z| / |Z|`` over the fitted points.
    frequencies_fitted : int
        Number of frequencies inside the fit window.
    """

    r_ion_norm: float
    theta: float
    tau: float
    porosity: float
    rms_relative_error: float
    frequencies_fitted: int


def finite_diffusion_impedance(
    omega_over_omega_c: np.ndarray, *, r_norm: float = 1.0, theta: float = 1.0
) -> np.ndarray:
    """Normalised impedance of a uniform RC line shorted at its far end (finite diffusion).

    ``Z~ = r_norm tanh(s) / s`` with ``s = sqrt(i omega theta / omega_c)``: the exact
    impedance of Eq. 1 for a straight pore (``r_norm = 1 / eps``, ``theta = 1``).

    Parameters
    ----------
    omega_over_omega_c : array_like
        Angular frequencies in units of ``omega_c = D_e / L^2``.
    r_norm : float
        Low-frequency limit (normalised ionic resistance).
    theta : float
        Time constant in units of ``1 / omega_c``.

    Returns
    -------
    numpy.ndarray
        Complex normalised impedance, same shape as the frequencies.
    """
    x = np.asarray(omega_over_omega_c, dtype=float)
    s = np.sqrt(1j * x * theta)
    small = np.abs(s) < 1e-4
    safe = np.where(small, 1.0, s)
    # tanh(s)/s -> 1 - s^2/3 for small s
    ratio = np.where(small, 1.0 - s**2 / 3.0, np.tanh(safe) / safe)
    return r_norm * ratio


def simulate_impedance(
    volume: np.ndarray,
    *,
    axis: int,
    omega_over_omega_c: np.ndarray | None = None,
    n_frequencies: int = 25,
    omega_range: tuple[float, float] = (1e-2, 1e3),
    pore_value: float | None = None,
    rtol: float = 1e-8,
    max_iter: int = 20_000,
    preconditioner: str = "auto",
    progress: Callable[[float, str], None] | None = None,
) -> ImpedanceSpectrum:
    """Frequency-domain diffusion through a pore volume: the simulated EIS of Eq. 1.

    Each frequency is a complex symmetric solve ``(A + i omega h^2 / D) C = b`` on the pores
    connected to the inlet (dead ends charge too), by conjugate orthogonal CG preconditioned
    with the aggregation-multigrid V-cycle of ``A + omega h^2 / D`` (Jacobi on small
    volumes), warm-started from the previous, lower frequency.

    Parameters
    ----------
    volume : numpy.ndarray
        3D (z, y, x) binary volume, pore = nonzero (or ``== pore_value``).
    axis : int
        Transport axis; the stimulus (C = 1) is applied on index 0.
    omega_over_omega_c : array_like, optional
        Angular frequencies in units of ``omega_c = D_e / L^2``; default ``n_frequencies``
        log-spaced over ``omega_range``, capped at ``0.1 L^2`` (L in voxels),
        where the penetration depth is about 3 voxels.
    n_frequencies : int
        Number of default frequencies.
    omega_range : (float, float)
        Default frequency span in units of omega_c.
    rtol : float
        Relative residual per frequency.
    max_iter : int
        Iteration limit per frequency (ConvergenceError beyond it).
    preconditioner : {"auto", "multigrid", "jacobi"}
        ``auto`` uses multigrid above 20 000 unknowns.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    ImpedanceSpectrum

    Raises
    ------
    EngineInputError
        Bad volume (see ``tortuosity``) or no pore path between the two faces.
    ConvergenceError
        A frequency did not converge; the message gives its residual.
    """
    mask = pore_mask(volume, pore_value=pore_value)
    axis = check_axis(mask, axis)
    moved = np.ascontiguousarray(np.moveaxis(mask, axis, 0))
    length = moved.shape[0]
    cross_section = moved.shape[1] * moved.shape[2]
    percolating, from_inlet = connected_clusters(moved)
    if not percolating.any():
        raise EngineInputError(
            f"no pore path connects the two faces along axis {axis}: the structure does not "
            "percolate, its ionic resistance is infinite"
        )
    if omega_over_omega_c is None:
        hi = min(omega_range[1], 0.1 * length**2)
        lo = min(omega_range[0], hi / 10)
        omega = np.logspace(np.log10(lo), np.log10(hi), n_frequencies)
    else:
        omega = np.sort(np.asarray(omega_over_omega_c, dtype=float).ravel())
        if omega.size == 0 or np.any(omega <= 0) or not np.all(np.isfinite(omega)):
            raise EngineInputError("frequencies must be positive and finite")

    index, coords, n = _kernels.number_unknowns(from_inlet)
    nbr, inlet, outlet = _kernels.build_neighbours(index, n)
    diag = _kernels.diagonal(nbr, (inlet + outlet).astype(np.float64))
    b = 2.0 * inlet.astype(np.complex128)
    inlet_idx = np.flatnonzero(inlet)
    if preconditioner not in ("auto", "multigrid", "jacobi"):
        raise EngineInputError(
            f"unknown preconditioner {preconditioner!r}; choose auto, multigrid or jacobi"
        )
    use_multigrid = preconditioner == "multigrid" or (
        preconditioner == "auto" and n > MULTIGRID_MIN_UNKNOWNS
    )
    multigrid = None
    if use_multigrid:
        try:
            multigrid = AggregationMultigrid(nbr, diag, coords)
        except CoarseningStalled:
            multigrid = None
    # start from the steady state (omega -> 0)
    x_real = np.ones(n)
    _kernels.pcg(
        nbr, diag, b.real.copy(), x_real, rtol=rtol, max_iter=max_iter, preconditioner=multigrid
    )
    x = x_real.astype(np.complex128)
    z = np.empty(omega.size, dtype=np.complex128)
    iterations = np.zeros(omega.size, dtype=np.int64)
    for k, w in enumerate(omega):
        shift = w / length**2
        if multigrid is not None:
            multigrid.set_shift(shift)
        it, rel, ok = _kernels.cocg(
            nbr, diag, shift, b, x, rtol=rtol, max_iter=max_iter, preconditioner=multigrid
        )
        if not ok:
            raise ConvergenceError(
                f"impedance solve at omega = {w:.3g} omega_c did not converge in {it} "
                f"iterations: relative residual {rel:.2e} (target {rtol:.1e})"
            )
        iterations[k] = it
        inlet_flux = 2.0 * np.sum(1.0 - x[inlet_idx])
        # Eq. 2 with D = 1, lengths in voxels: Z~ = (1 / J) A / L
        z[k] = cross_section / (length * inlet_flux)
        if progress:
            progress((k + 1) / omega.size, f"omega = {w:.3g} omega_c: {it} iterations")
    return ImpedanceSpectrum(
        omega_over_omega_c=omega,
        z_norm=z,
        porosity=float(mask.mean()),
        axis=axis,
        length_voxels=length,
        iterations=iterations,
    )


def fit_transmission_line(
    omega_over_omega_c: np.ndarray,
    z_norm: np.ndarray,
    *,
    porosity: float,
    window: float | None = 4.0,
) -> TransmissionLineFit:
    """Fit a uniform RC transmission line (shorted far end) to a normalised spectrum.

    Least squares on the relative complex residual of
    ``Z~ = R tanh(sqrt(i omega theta)) / sqrt(i omega theta)`` over R and theta. Real pore
    networks deviate from a uniform line at high frequency, where only the pores next to the
    inlet charge, so the fit keeps the frequencies with ``omega theta / omega_c <= window``
    (|s|^2, re-selected with the fitted theta until stable): the transmission-line part of the
    spectrum from the real-axis intercept through the 45 deg region. With the default window
    the fitted tau is within about 1 % (at most 2 %) of the steady-state tau on random
    structures, and within 3 % across the walls of strongly anisotropic (DIT-like) ones.

    Parameters
    ----------
    omega_over_omega_c : numpy.ndarray
        (n,) angular frequencies in units of omega_c.
    z_norm : numpy.ndarray
        (n,) complex normalised impedance (Eq. 2).
    porosity : float
        eps, to turn R = tau / eps into tau (Eq. 3).
    window : float or None
        Highest ``omega theta / omega_c`` used (None: every frequency).

    Returns
    -------
    TransmissionLineFit
    """
    w_all = np.asarray(omega_over_omega_c, dtype=float)
    z_all = np.asarray(z_norm, dtype=complex)
    if w_all.shape != z_all.shape or w_all.ndim != 1:
        raise EngineInputError("frequencies and impedances must be 1D arrays of equal length")
    if w_all.size < 3:
        raise EngineInputError("need at least 3 frequencies with one impedance each to fit")
    if not 0 < porosity <= 1:
        raise EngineInputError(f"porosity must be in (0, 1], got {porosity}")
    r0 = float(z_all[np.argmin(w_all)].real)
    if not r0 > 0:
        raise EngineInputError("impedance has no positive low-frequency resistance to fit")

    def fit(w, z, start):
        def residual(params):
            r, theta = np.exp(params)
            model = finite_diffusion_impedance(w, r_norm=r, theta=theta)
            d = (model - z) / np.abs(z)
            return np.concatenate([d.real, d.imag])

        sol = optimize.least_squares(residual, start, method="lm", xtol=1e-12, ftol=1e-12)
        if not sol.success:
            raise ConvergenceError(f"transmission-line fit failed: {sol.message}")
        return sol

    params = np.log([r0, max(r0 * porosity, 1e-3)])
    keep = np.ones(w_all.size, dtype=bool)
    for _ in range(5):
        sol = fit(w_all[keep], z_all[keep], params)
        params = sol.x
        if window is None:
            break
        theta = float(np.exp(params[1]))
        new_keep = w_all * theta <= window
        if new_keep.sum() < 3:
            new_keep = np.zeros_like(keep)
            new_keep[np.argsort(w_all)[:3]] = True
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    r, theta = np.exp(params)
    rms = float(np.sqrt(np.mean(sol.fun**2) * 2))
    return TransmissionLineFit(
        r_ion_norm=float(r),
        theta=float(theta),
        tau=float(r * porosity),
        porosity=float(porosity),
        rms_relative_error=rms,
        frequencies_fitted=int(keep.sum()),
    )


def tau_from_ionic_resistance(
    r_ion: float, *, area: float, conductivity: float, length: float, porosity: float
) -> float:
    """Eq. 3: ``tau / eps = R_ion A_CC K_0 / L``, returned as tau.

    Parameters
    ----------
    r_ion : float
        Ionic resistance of the transmission line (ohm, or s/cm^3 for diffusion).
    area : float
        Current-collector area ``A_CC`` (cm^2).
    conductivity : float
        Bulk conductivity (or diffusivity) ``K_0`` of the electrolyte (S/cm, or cm^2/s).
    length : float
        Electrode / volume length ``L`` along the transport direction (cm).
    porosity : float
        eps.
    """
    if not (area > 0 and conductivity > 0 and length > 0 and 0 < porosity <= 1):
        raise EngineInputError("area, conductivity, length must be > 0 and porosity in (0, 1]")
    return float(r_ion * area * conductivity / length * porosity)


def directional_diffusivity(d_electrolyte: float, porosity: float, tau: float) -> float:
    """Eq. 4: ``D_directional = D_e eps / tau`` (same units as ``d_electrolyte``; 0 if tau=inf)."""
    if not np.isfinite(tau):
        return 0.0
    if tau <= 0:
        raise EngineInputError(f"tortuosity factor must be positive, got {tau}")
    return float(d_electrolyte * porosity / tau)
