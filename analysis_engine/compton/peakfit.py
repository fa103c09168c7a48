"""Vectorised pseudo-Voigt + linear background fit of the Compton peak in every pixel.

The paper fits the 93.9 keV peak with a "Lorentz-Gaussian" function. Here the model for the
counts in bin ``[lo, hi]`` is the exact bin integral of

``A [eta L(E; c, w) + (1 - eta) G(E; c, w)] + b0 + b1 (E - E_ref)``

with unit-area Lorentzian L and Gaussian G of common FWHM w (analytic CDFs: arctan and erf),
so wide bins do not bias the width. All pixels are fitted at once by a batched
variable-projection Newton fit of the Poisson likelihood (the linear parameters -- area and the
two background terms -- are eliminated in every step, so only centre and FWHM are iterated,
and only in pixels not yet converged), which is the correct statistics for low counts, where
least squares with 1/counts weights biases the area. Pixels it cannot settle (no peak, a
parameter at its bound) fall back to a bounded Levenberg-Marquardt (Fisher scoring).
Parameter uncertainties are the square roots of the diagonal of the inverse Fisher matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erf

from analysis_engine.compton.kinematics import compton_energy_kev
from analysis_engine.compton.profile import (
    FLAG_FIT_FAILED,
    FLAG_LOW_COUNTS,
    bin_edges_from_centres,
)
from analysis_engine.errors import EngineInputError

__all__ = ["PeakFit", "pseudo_voigt_bin_counts", "fit_compton_peaks"]

_LN2 = np.log(2.0)
_G_SCALE = 2.0 * np.sqrt(_LN2)  # (E - c) * this / w is the Gaussian's erf argument
_G_NORM = 2.0 * np.sqrt(_LN2 / np.pi)
_MIN_FWHM_KEV = 0.05


@dataclass(frozen=True)
class PeakFit:
    """Result of :func:`fit_compton_peaks`; arrays have the spectra's leading shape.

    Attributes
    ----------
    center_kev, fwhm_kev, area : numpy.ndarray
        Peak centre and full width at half maximum (keV) and peak area (counts).
    center_sigma_kev, fwhm_sigma_kev, area_sigma : numpy.ndarray
        One-sigma statistical uncertainties (inverse Fisher information).
    eta : numpy.ndarray
        Lorentzian fraction of the pseudo-Voigt (shared value when it was fixed).
    background_kev, background_slope : numpy.ndarray
        Linear background ``b0 + b1 (E - E_ref)`` in counts per keV, ``E_ref`` the window centre.
    deviance : numpy.ndarray
        Poisson deviance at the optimum (about the number of bins minus parameters).
    flags : numpy.ndarray
        uint8 bits: ``FLAG_LOW_COUNTS`` (not fitted), ``FLAG_FIT_FAILED``. Flagged pixels are NaN.
    window_kev : tuple of float
        The energy range that was fitted.
    """

    center_kev: np.ndarray
    fwhm_kev: np.ndarray
    area: np.ndarray
    center_sigma_kev: np.ndarray
    fwhm_sigma_kev: np.ndarray
    area_sigma: np.ndarray
    eta: np.ndarray
    background_kev: np.ndarray
    background_slope: np.ndarray
    deviance: np.ndarray
    flags: np.ndarray
    window_kev: tuple[float, float]


def _model(
    theta: np.ndarray, edges: np.ndarray, e_ref: float, eta_fixed: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Bin counts (P, n) and Jacobian (P, n, k) for parameters (P, k).

    theta columns: area, centre, fwhm, b0, b1 [, eta].
    """
    area, centre, fwhm, b0, b1 = (theta[:, i : i + 1] for i in range(5))
    eta = theta[:, 5:6] if eta_fixed is None else np.full_like(area, eta_fixed)
    x = edges[None, :] - centre  # (P, n+1)
    u = x / fwhm
    gauss_cdf = 0.5 * erf(_G_SCALE * u)
    lorentz_cdf = np.arctan(2.0 * u) / np.pi
    gauss_pdf = _G_NORM / fwhm * np.exp(-4.0 * _LN2 * u**2)
    lorentz_pdf = 2.0 / (np.pi * fwhm) / (1.0 + 4.0 * u**2)
    g_bin = np.diff(gauss_cdf, axis=1)
    l_bin = np.diff(lorentz_cdf, axis=1)
    shape = eta * l_bin + (1.0 - eta) * g_bin
    pdf = eta * lorentz_pdf + (1.0 - eta) * gauss_pdf
    lo, hi = edges[:-1] - e_ref, edges[1:] - e_ref
    width = hi - lo
    moment = 0.5 * (hi**2 - lo**2)
    mu = area * shape + b0 * width + b1 * moment
    k = 5 if eta_fixed is not None else 6
    jac = np.empty(mu.shape + (k,))
    jac[..., 0] = shape
    jac[..., 1] = -area * np.diff(pdf, axis=1)
    jac[..., 2] = -area / fwhm * np.diff(pdf * x, axis=1)
    jac[..., 3] = width
    jac[..., 4] = moment
    if eta_fixed is None:
        jac[..., 5] = area * (l_bin - g_bin)
    return mu, jac


def pseudo_voigt_bin_counts(
    edges_kev: ArrayLike,
    *,
    area: float,
    center_kev: float,
    fwhm_kev: float,
    eta: float = 0.5,
    background_kev: float = 0.0,
    background_slope: float = 0.0,
    reference_kev: float | None = None,
) -> np.ndarray:
    """Expected counts per bin of the pseudo-Voigt + linear background model (exact integrals).

    Parameters
    ----------
    edges_kev : array_like, shape (n + 1,)
        Bin edges in keV.
    area : float
        Peak area in counts; ``center_kev`` and ``fwhm_kev`` in keV; ``eta`` the Lorentz fraction.
    background_kev, background_slope : float
        Background density ``b0 + b1 (E - reference_kev)`` in counts per keV (reference
        defaults to the middle of the edges).
    """
    edges = np.asarray(edges_kev, dtype=np.float64)
    e_ref = 0.5 * (edges[0] + edges[-1]) if reference_kev is None else float(reference_kev)
    theta = np.array([[area, center_kev, fwhm_kev, background_kev, background_slope, eta]])
    return _model(theta, edges, e_ref, None)[0][0]


def _deviance(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    mu_safe = np.maximum(mu, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(y > 0, y * np.log(y / mu_safe), 0.0)
    dev = 2.0 * np.sum(mu_safe - y + log_term, axis=1)
    return np.where(np.all(mu > 0, axis=1), dev, np.inf)


def _initial_guess(
    y: np.ndarray, edges: np.ndarray, e_ref: float, eta0: float | None
) -> np.ndarray:
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    n = y.shape[1]
    side = max(n // 8, 2)
    left = y[:, :side].sum(1) / width[:side].sum()
    right = y[:, -side:].sum(1) / width[-side:].sum()
    e_left, e_right = centres[:side].mean(), centres[-side:].mean()
    b1 = (right - left) / (e_right - e_left)
    b0 = left + b1 * (e_ref - e_left)
    background = (b0[:, None] + b1[:, None] * (centres - e_ref)) * width
    net = np.clip(y - background, 0.0, None)
    area = np.maximum(net.sum(1), 1.0)
    centre = (net * centres).sum(1) / area
    spread = np.sqrt(np.maximum((net * (centres - centre[:, None]) ** 2).sum(1) / area, 1e-6))
    fwhm = np.clip(2.3548 * spread, 3.0 * width.mean(), (edges[-1] - edges[0]) / 2.0)
    columns = [area, centre, fwhm, np.maximum(b0, 0.0), b1]
    if eta0 is not None:
        columns.append(np.full_like(area, eta0))
    return np.stack(columns, axis=1)


def _normal_equations(
    jac: np.ndarray, weight: np.ndarray, residual: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Batched J^T W J (P, k, k) and J^T W r (P, k) via matmul (far faster than einsum)."""
    jw_t = np.swapaxes(jac * weight[..., None], 1, 2)
    fisher = jw_t @ jac
    grad = None if residual is None else (jw_t @ residual[..., None])[..., 0]
    return fisher, grad


def _levenberg_marquardt(
    y: np.ndarray,
    edges: np.ndarray,
    e_ref: float,
    theta: np.ndarray,
    eta_fixed: float | None,
    max_iter: int,
    tol: float,
    step_sigma: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched LM on the Poisson deviance. Returns theta, covariance, deviance, converged."""
    p, k = theta.shape
    lam = np.full(p, 1e-3)
    mu, jac = _model(theta, edges, e_ref, eta_fixed)
    dev = _deviance(y, mu)
    converged = np.zeros(p, dtype=bool)
    active = np.flatnonzero(np.isfinite(dev))
    lo_bound = np.array([0.0, edges[0], _MIN_FWHM_KEV, -np.inf, -np.inf, 0.0])[:k]
    hi_bound = np.array([np.inf, edges[-1], edges[-1] - edges[0], np.inf, np.inf, 1.0])[:k]
    eye = np.eye(k)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ya, mua, ja = y[active], mu[active], jac[active]
        weight = 1.0 / np.maximum(mua, 1e-3)
        fisher, grad = _normal_equations(ja, weight, ya - mua)
        # parameters pinned at a bound with the descent direction pointing outwards are held
        # fixed for this step (projected LM), so the others still take a full Newton step
        theta_a = theta[active]
        pinned = ((theta_a <= lo_bound) & (grad < 0)) | ((theta_a >= hi_bound) & (grad > 0))
        free = (~pinned).astype(np.float64)
        fisher = fisher * free[:, :, None] * free[:, None, :] + eye * (1.0 - free)[:, :, None]
        grad = grad * free
        damped = fisher + lam[active, None, None] * (fisher * eye + 1e-12 * eye)
        try:
            step = np.linalg.solve(damped, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack(
                [np.linalg.lstsq(m, g, rcond=None)[0] for m, g in zip(damped, grad, strict=True)]
            )
        trial = np.clip(theta[active] + step, lo_bound, hi_bound)
        mu_t, jac_t = _model(trial, edges, e_ref, eta_fixed)
        dev_t = _deviance(ya, mu_t)
        better = dev_t <= dev[active]
        idx = active[better]
        gain = dev[idx] - dev_t[better]
        theta[idx], mu[idx], jac[idx], dev[idx] = (
            trial[better],
            mu_t[better],
            jac_t[better],
            dev_t[better],
        )
        lam[idx] = np.maximum(lam[idx] / 4.0, 1e-9)
        lam[active[~better]] *= 5.0
        # a step far below the statistical error (conditional sigma 1/sqrt(F_ii)) ends the fit
        info = np.sqrt(np.abs(np.diagonal(fisher[better], axis1=1, axis2=2)))
        small_step = np.all(np.abs(step[better]) * info <= step_sigma, axis=1)
        # a deviance gain of g moves the parameters by about sqrt(g) standard deviations
        done_now = idx[(gain <= np.maximum(tol * (1.0 + dev[idx]), step_sigma**2)) | small_step]
        stuck = active[~better][lam[active[~better]] > 1e8]  # no descent left: at the minimum
        converged[done_now] = True
        converged[stuck] = True
        active = active[~converged[active]]
    weight = 1.0 / np.maximum(mu, 1e-3)
    fisher, _ = _normal_equations(jac, weight, None)
    cov, ok = _covariance(fisher)
    return theta, cov, dev, converged & ok


def _covariance(fisher: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse (P, k, k) of Fisher matrices (P, k, k) and whether each was well conditioned."""
    p, k = fisher.shape[:2]
    eye = np.eye(k)
    cov = np.full((p, k, k), np.nan)
    ok = np.isfinite(fisher).all(axis=(1, 2))
    diag = np.sqrt(np.abs(np.diagonal(fisher, axis1=1, axis2=2)))
    ok &= np.all(diag > 0, axis=1)
    scale = np.where(ok[:, None], diag, 1.0)
    scaled = fisher / scale[:, :, None] / scale[:, None, :]
    eig = np.linalg.eigvalsh(np.where(ok[:, None, None], scaled, eye))
    ok &= eig[:, 0] > 1e-12 * eig[:, -1]  # scale-free conditioning test
    # inverting the scaled matrix and scaling back is exact and better conditioned
    cov[ok] = np.linalg.inv(scaled[ok]) / scale[ok][:, :, None] / scale[ok][:, None, :]
    return cov, ok


def _shape_basis(
    centre: np.ndarray, fwhm: np.ndarray, edges: np.ndarray, eta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-area pseudo-Voigt bin integrals (P, n) and their derivatives by centre and FWHM."""
    x = edges[None, :] - centre[:, None]  # (P, n+1)
    inv_w = 1.0 / fwhm[:, None]
    u = x * inv_w
    u2 = u * u
    cdf = erf(_G_SCALE * u)
    cdf *= 0.5 * (1.0 - eta)
    cdf += (eta / np.pi) * np.arctan(2.0 * u)
    pdf = np.exp(-4.0 * _LN2 * u2)
    pdf *= (1.0 - eta) * _G_NORM
    pdf += (2.0 * eta / np.pi) / (1.0 + 4.0 * u2)
    pdf *= inv_w
    shape = cdf[:, 1:] - cdf[:, :-1]
    d_centre = pdf[:, :-1] - pdf[:, 1:]  # d cdf(E)/dc = -pdf(E)
    pdf *= x
    d_fwhm = pdf[:, :-1] - pdf[:, 1:]  # d cdf(E)/dw = -pdf(E) (E - c) / w
    d_fwhm *= inv_w
    return shape, d_centre, d_fwhm


def _varpro_fit(
    y: np.ndarray,
    edges: np.ndarray,
    e_ref: float,
    eta: float,
    theta0: np.ndarray,
    mu0: np.ndarray,
    max_iter: int,
    step_sigma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Variable-projection Newton fit of the Poisson deviance with eta held fixed.

    Each iteration evaluates the peak shape at the current centre and FWHM, updates the three
    linear parameters (area, b0, b1) by an exact Newton step of the Poisson likelihood (the
    model is linear in them, Hessian ``B^T diag(y / mu^2) B``; a Fisher-scoring step with
    weights 1/mu after a rejected step), then steps only the two nonlinear parameters by
    Gauss-Newton on the 5 x 5 system with the linear part eliminated (Kaufman's variable
    projection). A step that raises the deviance is halved. Only unconverged pixels are
    iterated. Returns theta (P, 5) [area, centre, fwhm, b0, b1], deviance (P,) and converged
    (P,); the caller evaluates the Fisher matrix once at the optimum. Pixels that are not
    converged keep their best state (NaN if none) for the bounded LM fallback.
    """
    p, n = y.shape
    lo, hi = edges[:-1] - e_ref, edges[1:] - e_ref
    columns = np.empty((n, 2))
    columns[:, 0] = hi - lo
    columns[:, 1] = 0.5 * (hi**2 - lo**2)
    c_lo, c_hi = edges[0], edges[-1]
    w_lo, w_hi = _MIN_FWHM_KEV, edges[-1] - edges[0]
    theta = np.full((p, 5), np.nan)  # area, centre, fwhm, b0, b1 at the last accepted iterate
    lin_cur = theta0[:, [0, 3, 4]].astype(np.float64)
    dev = np.full(p, np.inf)
    converged = np.zeros(p, dtype=bool)
    dead = np.zeros(p, dtype=bool)
    newton = np.zeros(p, dtype=bool)
    c, w = theta0[:, 1].astype(np.float64), theta0[:, 2].astype(np.float64)
    step_c, step_w = np.zeros(p), np.zeros(p)
    step_size = np.full(p, np.inf)  # the last step's length in standard deviations
    fisher_w = 1.0 / np.maximum(mu0, 1e-3)
    active = np.arange(p)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ya = y[active]
        shape, d_centre, d_fwhm = _shape_basis(c[active], w[active], edges, eta)
        jac = np.empty(shape.shape + (5,))  # unit-area Jacobian [s, width, moment, ds/dc, ds/dw]
        jac[..., 0] = shape
        jac[..., 1:3] = columns
        jac[..., 3] = d_centre
        jac[..., 4] = d_fwhm
        lin_a = lin_cur[active]
        mu_a = (jac[..., :3] @ lin_a[..., None])[..., 0]
        use_newton = newton[active] & np.all(mu_a > 0, axis=1)
        resid = ya - mu_a
        wt = fisher_w[active]
        zt = wt * resid
        if use_newton.any():
            inv_mu = 1.0 / mu_a[use_newton]
            zt[use_newton] = resid[use_newton] * inv_mu
            wt[use_newton] = ya[use_newton] * inv_mu * inv_mu
        jw_t = np.swapaxes(jac * wt[..., None], 1, 2)
        gram = jw_t @ jac  # (Pa, 5, 5) Hessian of the deviance / 2 at unit area
        grad = (np.swapaxes(jac, 1, 2) @ zt[..., None])[..., 0]
        try:
            d_lin = np.linalg.solve(gram[:, :3, :3], grad[:, :3, None])[..., 0]
        except np.linalg.LinAlgError:
            d_lin = np.stack(
                [
                    np.linalg.lstsq(m, v, rcond=None)[0]
                    for m, v in zip(gram[:, :3, :3], grad[:, :3], strict=True)
                ]
            )
        lin = lin_a + d_lin
        mu = mu_a + (jac[..., :3] @ d_lin[..., None])[..., 0]
        d = _deviance(ya, mu)
        prev = dev[active]
        better = (d <= prev + 1e-9 * (1.0 + np.abs(prev))) & (lin[:, 0] > 0)
        # a rejected step is halved (and retried with Fisher weights); once it is below
        # step_sigma the last accepted iterate is the optimum
        rej = active[~better]
        first = ~np.isfinite(dev[rej])  # no valid state at all: leave to the bounded LM
        newton[rej] = False
        step_c[rej] *= 0.5
        step_w[rej] *= 0.5
        step_size[rej] *= 0.5
        converged[rej[~first & (step_size[rej] <= step_sigma)]] = True
        retry = rej[~first & (step_size[rej] > step_sigma)]
        c[retry] = theta[retry, 1] + step_c[retry]
        w[retry] = theta[retry, 2] + step_w[retry]
        dead[rej[first]] = True
        # accepted: store the state, then take the Gauss-Newton step in (centre, fwhm)
        idx = active[better]
        lin_b, dl_b = lin[better], d_lin[better]
        theta[idx, 0], theta[idx, 3], theta[idx, 4] = lin_b[:, 0], lin_b[:, 1], lin_b[:, 2]
        theta[idx, 1], theta[idx, 2] = c[idx], w[idx]
        dev[idx] = d[better]
        lin_cur[idx] = lin_b
        mu_b = mu[better]
        fisher_w[idx] = 1.0 / np.maximum(mu_b, 1e-3)
        newton[idx] = np.all(mu_b > 0, axis=1)
        scale = np.ones((idx.size, 5))
        scale[:, 3:] = lin_b[:, :1]
        g_b = gram[better]
        hess = g_b * scale[:, :, None] * scale[:, None, :]
        # gradient after the linear update (linearised; its linear part is zero)
        g_nl = (grad[better] - (g_b[:, :, :3] @ dl_b[..., None])[..., 0]) * scale
        g_nl[:, :3] = 0.0
        try:
            step = np.linalg.solve(hess, g_nl[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack(
                [np.linalg.lstsq(m, v, rcond=None)[0] for m, v in zip(hess, g_nl, strict=True)]
            )
        info = np.sqrt(np.abs(np.diagonal(hess, axis1=1, axis2=2)))
        # trust region: move at most one FWHM in centre and half of it in width per step
        wb = w[idx]
        dc = np.clip(step[:, 3], -wb, wb)
        dw = np.clip(step[:, 4], -0.5 * wb, 0.5 * wb)
        dc = np.clip(c[idx] + dc, c_lo, c_hi) - c[idx]
        dw = np.clip(wb + dw, w_lo, w_hi) - wb
        size = np.maximum(np.abs(dc) * info[:, 3], np.abs(dw) * info[:, 4])
        lin_size = np.max(np.abs(dl_b) * info[:, :3], axis=1)
        done = (size <= step_sigma) & (lin_size <= step_sigma)
        converged[idx[done]] = True
        go = ~done
        step_c[idx], step_w[idx], step_size[idx] = dc, dw, size
        c[idx[go]] += dc[go]
        w[idx[go]] += dw[go]
        active = active[~converged[active] & ~dead[active]]
    return theta, dev, converged


def fit_compton_peaks(
    spectra: ArrayLike,
    energy_bins_kev: ArrayLike,
    *,
    window_kev: tuple[float, float] | None = None,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    eta: float | None = None,
    min_counts: float = 200.0,
    max_iter: int = 60,
    tol: float = 1e-7,
) -> PeakFit:
    """Fit every spectrum's Compton peak with a pseudo-Voigt plus a linear background.

    Parameters
    ----------
    spectra : array_like, shape (..., n_bins)
        Counts per energy bin, e.g. (80, 80, n).
    energy_bins_kev : array_like, shape (n_bins,)
        Bin centres in keV.
    window_kev : (float, float), optional
        Energy range to fit; default the Compton line (93.87 keV at 115 keV, 90 deg) +- 6 keV.
        Only whole bins inside are used.
    eta : float, optional
        Lorentzian fraction. Default: fitted once on the summed spectrum of all unflagged
        pixels and then held fixed per pixel (a per-pixel eta is poorly determined at a few
        thousand counts); a single spectrum gets its own free eta.
    min_counts : float
        Spectra with fewer counts in the window are flagged ``FLAG_LOW_COUNTS`` and not fitted.
    max_iter, tol : int, float
        Levenberg-Marquardt iteration cap and relative convergence tolerance.

    Returns
    -------
    PeakFit
        Peak centre, FWHM, area with uncertainties per spectrum; NaN where flagged.

    Raises
    ------
    EngineInputError
        Shape mismatch, negative counts, a window outside the spectra or too few bins in it.
    """
    data = np.asarray(spectra)
    centres = np.asarray(energy_bins_kev, dtype=np.float64)
    all_edges = bin_edges_from_centres(centres)
    if data.ndim < 1 or data.shape[-1] != centres.size:
        raise EngineInputError(
            f"spectra have {data.shape[-1] if data.ndim else 0} energy bins but the energy axis "
            f"has {centres.size}"
        )
    if window_kev is None:
        line = compton_energy_kev(incident_kev, angle_deg)
        window_kev = (line - 6.0, line + 6.0)
    w_lo, w_hi = (float(v) for v in window_kev)
    inside = np.flatnonzero((all_edges[:-1] >= w_lo - 1e-9) & (all_edges[1:] <= w_hi + 1e-9))
    if inside.size < 8:
        raise EngineInputError(
            f"the peak-fit window {w_lo:.2f}-{w_hi:.2f} keV holds {inside.size} whole energy bins "
            f"of the spectra ({all_edges[0]:.2f}-{all_edges[-1]:.2f} keV); at least 8 are needed"
        )
    edges = all_edges[inside[0] : inside[-1] + 2]
    e_ref = 0.5 * (edges[0] + edges[-1])
    lead = data.shape[:-1]
    y = np.asarray(
        data.reshape(-1, data.shape[-1])[:, inside[0] : inside[-1] + 1], dtype=np.float64
    )
    if y.size and y.min() < 0:
        raise EngineInputError("spectra contain negative counts; expected counts per bin >= 0")
    p = y.shape[0]
    flags = np.zeros(p, dtype=np.uint8)
    enough = y.sum(1) >= min_counts
    flags[~enough] |= FLAG_LOW_COUNTS
    k_all = 6
    theta = np.full((p, k_all), np.nan)
    cov = np.full((p, k_all, k_all), np.nan)
    dev = np.full(p, np.nan)
    fit_idx = np.flatnonzero(enough)
    if fit_idx.size:
        if eta is not None and not 0.0 <= float(eta) <= 1.0:
            raise EngineInputError(f"eta (Lorentz fraction) must be within 0..1, got {eta}")
        # the summed spectrum fixes eta (unless given) and warm-starts every pixel's fit
        summed = y[fit_idx].sum(0, keepdims=True)
        t0 = _initial_guess(summed, edges, e_ref, 0.3 if eta is None else None)
        t_sum, c_sum, d_sum, ok_sum = _levenberg_marquardt(
            summed, edges, e_ref, t0, None if eta is None else float(eta), 200, 1e-10
        )
        if eta is None:
            eta_value = float(t_sum[0, 5]) if np.isfinite(t_sum[0, 5]) else 0.3
        else:
            eta_value = float(eta)
            t_sum = np.concatenate([t_sum, [[eta_value]]], axis=1)
            c_sum = np.pad(c_sum, ((0, 0), (0, 1), (0, 1)), constant_values=np.nan)
        if p == 1:  # a single spectrum is its own sum
            theta[fit_idx], cov[fit_idx], dev[fit_idx] = t_sum, c_sum, d_sum
            if not ok_sum[0]:
                flags[fit_idx] |= FLAG_FIT_FAILED
            fit_idx = fit_idx[:0]
        if fit_idx.size:
            y_fit = y[fit_idx]
            t0 = _initial_guess(y_fit, edges, e_ref, None)
            if ok_sum[0]:
                share = y_fit.sum(1) / summed.sum()
                t0[:, 1:3] = t_sum[0, 1:3]
                t0[:, [0, 3, 4]] = share[:, None] * t_sum[0, [0, 3, 4]]
                mu_sum = _model(t_sum[:, :5], edges, e_ref, eta_value)[0]
                mu0 = share[:, None] * mu_sum
            else:
                mu0 = _model(t0, edges, e_ref, eta_value)[0]
            # variable projection does the bulk; per pixel, steps below 3 % of the
            # statistical error are converged enough
            t, d, ok = _varpro_fit(y_fit, edges, e_ref, eta_value, t0, mu0, max_iter, 0.03)
            # uncertainties: inverse expected Fisher information (weights 1/mu) at the optimum
            c = np.full((t.shape[0], 5, 5), np.nan)
            fin = np.flatnonzero(ok)
            if fin.size:
                mu_f, jac_f = _model(t[fin], edges, e_ref, eta_value)
                fisher, _ = _normal_equations(jac_f, 1.0 / np.maximum(mu_f, 1e-3), None)
                c[fin], ok[fin] = _covariance(fisher)
            # the rest (no peak, a parameter at its bound, slow convergence): bounded LM
            rest = np.flatnonzero(~ok)
            if rest.size:
                start = np.where(np.isfinite(t[rest]).all(1)[:, None], t[rest], t0[rest])
                start[:, 0] = np.maximum(start[:, 0], 0.0)
                t[rest], c[rest], d[rest], ok[rest] = _levenberg_marquardt(
                    y_fit[rest], edges, e_ref, start, eta_value, max_iter, tol, step_sigma=0.03
                )
            theta[fit_idx, :5], theta[fit_idx, 5] = t, eta_value
            cov[fit_idx, :5, :5], dev[fit_idx] = c, d
            flags[fit_idx[~ok]] |= FLAG_FIT_FAILED
    centre = theta[:, 1]
    off_window = np.isfinite(centre) & ((centre <= edges[0]) | (centre >= edges[-1]))
    flags[off_window] |= FLAG_FIT_FAILED
    bad = flags != 0
    theta[bad] = np.nan
    cov[bad] = np.nan
    dev[bad] = np.nan
    sig = np.sqrt(np.abs(np.diagonal(cov, axis1=1, axis2=2)))

    def out(a: np.ndarray) -> np.ndarray:
        return a.reshape(lead)

    return PeakFit(
        center_kev=out(theta[:, 1]),
        fwhm_kev=out(theta[:, 2]),
        area=out(theta[:, 0]),
        center_sigma_kev=out(sig[:, 1]),
        fwhm_sigma_kev=out(sig[:, 2]),
        area_sigma=out(sig[:, 0]),
        eta=out(theta[:, 5]),
        background_kev=out(theta[:, 3]),
        background_slope=out(theta[:, 4]),
        deviance=out(dev),
        flags=out(flags),
        window_kev=(float(edges[0]), float(edges[-1])),
    )
