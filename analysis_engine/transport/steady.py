"""Steady-state tortuosity factor of a binary pore volume (TauFactor method).

Laplace's equation in the pore phase, C = 1 on the inlet face (index 0 of ``axis``) and C = 0
on the outlet face (the last index), zero flux on pore/solid interfaces and on the lateral
faces. Only the pore cluster connected to both faces carries steady flux, so only it is
solved. The tortuosity factor follows the TauFactor convention

    D_eff / D = J L / (A dC),    tau = eps D / D_eff,

with ``J`` the flux through a plane normal to ``axis``, ``L`` the length of the volume along
``axis``, ``A`` its cross-section and ``eps`` the porosity of the whole volume (isolated pores
included). The Dirichlet values sit on the outer faces, half a voxel from the first and last
voxel centres, exactly as in TauFactor (Cooper et al., SoftwareX 5, 203, 2016; Kench et al.,
JOSS 8, 5358, 2023).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis_engine.errors import ConvergenceError, EngineInputError
from analysis_engine.transport import _kernels
from analysis_engine.transport._multigrid import AggregationMultigrid, CoarseningStalled
from analysis_engine.transport._volume import check_axis, connected_clusters, pore_mask

__all__ = ["TortuosityResult", "tortuosity", "face_fluxes"]

BACKENDS = ("native", "taufactor")

#: below this many unknowns plain Jacobi-preconditioned CG is cheaper than building multigrid
MULTIGRID_MIN_UNKNOWNS = 20_000


@dataclass(frozen=True)
class TortuosityResult:
    """Steady-state transport through a pore volume along one axis.

    Attributes
    ----------
    tau : float
        Tortuosity factor ``eps D / D_eff`` (dimensionless); ``inf`` when no pore path
        connects the two faces.
    porosity : float
        Pore volume fraction of the whole volume (isolated pores included).
    percolating_porosity : float
        Volume fraction of the pore cluster connected to both faces.
    d_eff_ratio : float
        ``D_eff / D``.
    axis : int
        Transport axis of the (z, y, x) volume.
    backend : str
        ``"native"`` or ``"taufactor"``.
    percolating : bool
        Whether a pore path connects the two faces.
    iterations : int
        Solver iterations.
    residual : float
        Final relative residual ``||b - A C|| / ||b||`` (native) or TauFactor's flux spread.
    plane_flux : numpy.ndarray
        ``(L + 1,)`` flux through every plane normal to ``axis`` (inlet face first), in units
        of ``D dC A / L``; all equal to ``d_eff_ratio`` at convergence.
    concentration : numpy.ndarray or None
        Volume-shaped float32 concentration (1 at the inlet, 0 at the outlet), NaN outside the
        percolating cluster.
    flux : numpy.ndarray or None
        ``(3, *volume.shape)`` float32 voxel flux vector (components along z, y, x), in units of
        ``D dC / L``: a straight open channel has 1 along ``axis``.
    """

    tau: float
    porosity: float
    percolating_porosity: float
    d_eff_ratio: float
    axis: int
    backend: str
    percolating: bool
    iterations: int
    residual: float
    plane_flux: np.ndarray
    concentration: np.ndarray | None = None
    flux: np.ndarray | None = None


ProgressFn = Callable[[float, str], None]


def tortuosity(
    volume: np.ndarray,
    *,
    axis: int,
    backend: str = "native",
    pore_value: float | None = None,
    rtol: float = 1e-5,
    tau_rtol: float = 1e-4,
    max_iter: int = 20_000,
    allow_non_percolating: bool = False,
    return_fields: bool = True,
    taufactor_conv_crit: float = 1e-3,
    device: str = "cpu",
    preconditioner: str = "auto",
    progress: ProgressFn | None = None,
) -> TortuosityResult:
    """Steady-state tortuosity factor of a binary volume along ``axis``.

    Parameters
    ----------
    volume : numpy.ndarray
        3D (z, y, x) volume; pore = nonzero for a binary volume, or ``== pore_value``.
    axis : int
        Transport axis (0, 1 or 2). The inlet (C = 1) is index 0 of that axis.
    backend : {"native", "taufactor"}
        ``native``: conjugate gradients on the 7-point finite-volume stencil of the
        percolating cluster (float64, matrix-free neighbour table), preconditioned by an
        aggregation-multigrid V-cycle. ``taufactor``: TauFactor 2's SOR solver (PyTorch,
        float32).
    pore_value : float, optional
        Label of the pore phase in a non-binary volume.
    rtol : float
        Native: relative residual ``||b - A C|| / ||b||`` to reach.
    tau_rtol : float
        Native: also require the inlet and outlet fluxes to agree, and tau to change by less
        than this (relative) between convergence checks (every 5 multigrid or 50 Jacobi
        iterations).
    max_iter : int
        Iteration limit; exceeding it raises ConvergenceError with the residual reached.
    allow_non_percolating : bool
        Return ``tau = inf`` instead of raising when no pore path joins the two faces.
    return_fields : bool
        Also return concentration and flux volumes.
    taufactor_conv_crit : float
        TauFactor backend: its convergence criterion (relative flux spread between planes).
    device : str
        TauFactor backend: torch device (``"cpu"`` or ``"cuda"``).
    preconditioner : {"auto", "multigrid", "jacobi"}
        Native: aggregation-multigrid V-cycle (tens of iterations at any size) or Jacobi;
        ``auto`` uses multigrid above 20 000 unknowns.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    TortuosityResult

    Raises
    ------
    EngineInputError
        Non-binary volume without ``pore_value``, empty pore phase, volume thinner than 3
        voxels along ``axis``, unknown backend, or no percolating path (unless allowed).
    ConvergenceError
        The solver did not converge within ``max_iter``; the message gives the residual.
    """
    if backend not in BACKENDS:
        raise EngineInputError(f"unknown tortuosity backend {backend!r}; choose one of {BACKENDS}")
    if preconditioner not in ("auto", "multigrid", "jacobi"):
        raise EngineInputError(
            f"unknown preconditioner {preconditioner!r}; choose auto, multigrid or jacobi"
        )
    mask = pore_mask(volume, pore_value=pore_value)
    axis = check_axis(mask, axis)
    moved = np.ascontiguousarray(np.moveaxis(mask, axis, 0))
    porosity = float(mask.mean())
    length = moved.shape[0]
    cross_section = moved.shape[1] * moved.shape[2]
    percolating, _ = connected_clusters(moved)
    perc_count = int(percolating.sum())
    if perc_count == 0:
        if not allow_non_percolating:
            raise EngineInputError(
                f"no pore path connects the two faces along axis {axis}: the structure does "
                f"not percolate (porosity {porosity:.3f}), tortuosity is infinite"
            )
        return TortuosityResult(
            tau=float("inf"),
            porosity=porosity,
            percolating_porosity=0.0,
            d_eff_ratio=0.0,
            axis=axis,
            backend=backend,
            percolating=False,
            iterations=0,
            residual=0.0,
            plane_flux=np.zeros(length + 1),
        )
    if progress:
        progress(0.05, f"percolating cluster: {perc_count} of {int(mask.sum())} pore voxels")

    tau_taufactor = None
    if backend == "native":
        conc, iterations, residual = _solve_native(
            percolating,
            rtol=rtol,
            tau_rtol=tau_rtol,
            max_iter=max_iter,
            preconditioner=preconditioner,
            progress=progress,
        )
    else:
        conc, iterations, residual, tau_taufactor = _solve_taufactor(
            moved, percolating, conv_crit=taufactor_conv_crit, max_iter=max_iter, device=device
        )
    if progress:
        progress(0.95, f"solved in {iterations} iterations")

    flux_vectors, plane = face_fluxes(conc, percolating, with_vectors=return_fields)
    plane = plane * length / cross_section
    d_eff_ratio = float(plane.mean())
    if tau_taufactor is not None:  # report TauFactor's own number for its backend
        d_eff_ratio = porosity / tau_taufactor
    tau = porosity / d_eff_ratio if d_eff_ratio > 0 else float("inf")

    concentration = flux = None
    if return_fields:
        conc_out = np.where(percolating, conc, np.nan).astype(np.float32)
        concentration = np.ascontiguousarray(np.moveaxis(conc_out, 0, axis))
        moved_to_original = [axis] + [a for a in range(3) if a != axis]
        flux = np.empty((3, *mask.shape), dtype=np.float32)
        for i, original in enumerate(moved_to_original):
            flux[original] = np.moveaxis(flux_vectors[i] * length, 0, axis)
    return TortuosityResult(
        tau=float(tau),
        porosity=porosity,
        percolating_porosity=perc_count / mask.size,
        d_eff_ratio=d_eff_ratio,
        axis=axis,
        backend=backend,
        percolating=True,
        iterations=int(iterations),
        residual=float(residual),
        plane_flux=plane,
        concentration=concentration,
        flux=flux,
    )


def face_fluxes(
    concentration: np.ndarray, cluster: np.ndarray, *, with_vectors: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """Voxel flux vectors and plane fluxes for a concentration on an axis-first volume.

    Parameters
    ----------
    concentration : numpy.ndarray
        (L, M, N) concentration, axis 0 the transport axis (C = 1 before index 0, C = 0 after
        the last index); values outside ``cluster`` are ignored.
    cluster : numpy.ndarray
        (L, M, N) bool, voxels that conduct.
    with_vectors : bool
        Also compute the voxel flux vectors (otherwise ``vectors`` is empty).

    Returns
    -------
    vectors : list of numpy.ndarray
        Three (L, M, N) arrays: flux along each axis at the voxel centre (mean of its two
        faces), in units of D dC / voxel.
    plane : numpy.ndarray
        (L + 1,) total flux through each plane normal to axis 0 (unit voxel faces).
    """
    c = np.where(cluster, concentration, 0.0)
    vectors = []
    plane = None
    for ax in range(3 if with_vectors else 1):
        pad = [(0, 0)] * 3
        pad[ax] = (1, 1)
        cp = np.pad(c, pad)
        mp = np.pad(cluster, pad)
        if ax == 0:
            cp[0] = 1.0
            mp_in = np.ones_like(mp[0])
            mp[0] = mp_in
            mp[-1] = mp_in
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        open_face = mp[tuple(lo)] & mp[tuple(hi)]
        face = np.where(open_face, cp[tuple(lo)] - cp[tuple(hi)], 0.0)
        if ax == 0:
            face[0] *= 2.0  # half-voxel distance to the Dirichlet faces
            face[-1] *= 2.0
            plane = face.sum(axis=(1, 2))
            if not with_vectors:
                break
        first = [slice(None)] * 3
        last = [slice(None)] * 3
        first[ax] = slice(0, -1)
        last[ax] = slice(1, None)
        vectors.append(0.5 * (face[tuple(first)] + face[tuple(last)]))
    return vectors, plane


def _solve_native(cluster, *, rtol, tau_rtol, max_iter, preconditioner, progress):
    index, coords, n = _kernels.number_unknowns(cluster)
    nbr, inlet, outlet = _kernels.build_neighbours(index, n)
    diag = _kernels.diagonal(nbr, (inlet + outlet).astype(np.float64))
    b = 2.0 * inlet.astype(np.float64)
    # linear initial profile, like TauFactor: most of the answer for open structures
    length = cluster.shape[0]
    x = 1.0 - (coords[:, 0] + 0.5) / length
    use_multigrid = preconditioner == "multigrid" or (
        preconditioner == "auto" and n > MULTIGRID_MIN_UNKNOWNS
    )
    preconditioner = None
    if use_multigrid:
        try:
            preconditioner = AggregationMultigrid(nbr, diag, coords)
        except CoarseningStalled:
            preconditioner = None
    inlet_idx = np.flatnonzero(inlet)
    outlet_idx = np.flatnonzero(outlet)
    state = {"tau": None, "checks": 0}

    def check(xv):
        j_in = 2.0 * float(np.sum(1.0 - xv[inlet_idx]))
        j_out = 2.0 * float(np.sum(xv[outlet_idx]))
        mean = 0.5 * (j_in + j_out)
        if mean <= 0:
            return False
        tau_est = 1.0 / mean
        old = state["tau"]
        state["tau"] = tau_est
        state["checks"] += 1
        balanced = abs(j_in - j_out) <= tau_rtol * mean
        steady = old is not None and abs(tau_est - old) <= tau_rtol * tau_est
        if progress and state["checks"] % 10 == 0:
            progress(
                0.1 + 0.8 * min(1.0, state["checks"] / 100), f"solving, check {state['checks']}"
            )
        return balanced and steady

    iterations, rel, converged = _kernels.pcg(
        nbr,
        diag,
        b,
        x,
        rtol=rtol,
        max_iter=max_iter,
        check_every=5 if preconditioner is not None else 50,
        check=check,
        preconditioner=preconditioner,
    )
    if not converged:
        raise ConvergenceError(
            f"native tortuosity solver did not converge in {iterations} iterations: relative "
            f"residual {rel:.2e} (target {rtol:.1e}); raise max_iter or loosen rtol"
        )
    conc = np.where(index >= 0, x[index], 0.0)
    return conc, iterations, rel


def _solve_taufactor(moved, cluster, *, conv_crit, max_iter, device):
    try:
        import taufactor
    except ImportError as exc:  # pragma: no cover - taufactor is a declared dependency
        raise EngineInputError(f"the taufactor backend is not available: {exc}") from None
    import contextlib
    import io

    # TauFactor prints its progress to stdout, which the CLI reserves for the JSON summary
    with contextlib.redirect_stdout(io.StringIO()):
        solver = taufactor.Solver(moved.astype(np.uint8), device=device)
        solver.solve(iter_limit=max_iter, verbose=False, conv_crit=conv_crit)
    if not solver.converged:
        raise ConvergenceError(
            f"taufactor did not converge in {solver.iter} iterations (iteration limit "
            f"{max_iter}); raise max_iter"
        )
    field = solver.field[0, 1:-1, 1:-1, 1:-1].detach().cpu().numpy().astype(np.float64)
    conc = np.where(cluster, 0.5 - field, 0.0)
    spread = float(
        (solver.flux_1d.max() - solver.flux_1d.min()) / max(solver.flux_1d.max(), 1e-300)
    )
    return conc, solver.iter, spread, float(np.asarray(solver.tau).reshape(-1)[0])
