"""Aggregation multigrid preconditioner for the pore-network Laplacian (private).

Unknowns live on voxels of a regular grid, so aggregates are simply the occupied 2x2x2 blocks
(the voxels of one block form one coarse unknown) and the Galerkin coarse operator
``P^T A P`` (piecewise-constant ``P``) is again a 7-point stencil: the conductance between two
face-adjacent blocks is the sum of the open fine faces between them. Every level is therefore
stored matrix-free as a neighbour table, and numbered red-black like the fine grid. One V-cycle
(red-black Gauss-Seidel forward before and backward after the coarse correction, so the
preconditioner is symmetric) preconditions conjugate gradients. Unsmoothed aggregation
under-corrects smooth errors, which a constant scaling of the coarse correction compensates
(Braess 1995; Notay, ETNA 37, 2010).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.linalg

from analysis_engine.transport import _kernels

_CACHE = True

#: scaling of the unsmoothed-aggregation coarse correction (measured best on pore networks)
COARSE_SCALE = 1.8


@nb.njit(cache=_CACHE)
def _coarsen(nbr, weight, diag, mass, coords):
    """Aggregate 2x2x2 blocks: coarse (nbr, weight, diag, mass, coords, n_red) and ``agg``.

    ``weight`` holds the conductance of each neighbour link (ones on the fine level). Coarse
    unknowns are numbered red-black over the block grid.
    """
    n = nbr.shape[0]
    dz = 0
    dy = 0
    dx = 0
    for p in range(n):
        dz = max(dz, coords[p, 0] // 2 + 1)
        dy = max(dy, coords[p, 1] // 2 + 1)
        dx = max(dx, coords[p, 2] // 2 + 1)
    grid = np.full((dz, dy, dx), -1, dtype=np.int32)
    for p in range(n):
        grid[coords[p, 0] // 2, coords[p, 1] // 2, coords[p, 2] // 2] = 0
    nc = 0
    n_red = 0
    for colour in range(2):
        for k in range(dz):
            for j in range(dy):
                for i in range(dx):
                    if grid[k, j, i] == 0 and (k + j + i) % 2 == colour:
                        grid[k, j, i] = nc + 1  # +1: keep 0 meaning "occupied, unnumbered"
                        nc += 1
        if colour == 0:
            n_red = nc
    agg = np.empty(n, dtype=np.int64)
    for p in range(n):
        agg[p] = grid[coords[p, 0] // 2, coords[p, 1] // 2, coords[p, 2] // 2] - 1
    c_nbr = np.full((nc, 6), -1, dtype=np.int32)
    c_weight = np.zeros((nc, 6))
    c_diag = np.zeros(nc)
    c_mass = np.zeros(nc)
    c_coords = np.empty((nc, 3), dtype=np.int32)
    for p in range(n):
        a = agg[p]
        c_diag[a] += diag[p]
        c_mass[a] += mass[p]
        c_coords[a, 0] = coords[p, 0] // 2
        c_coords[a, 1] = coords[p, 1] // 2
        c_coords[a, 2] = coords[p, 2] // 2
        for q in range(6):
            m = nbr[p, q]
            if m < 0:
                continue
            b = agg[m]
            if b == a:
                c_diag[a] -= weight[p, q]  # link inside the block
            else:
                c_nbr[a, q] = b  # face-adjacent blocks lie in the same direction
                c_weight[a, q] += weight[p, q]
    return c_nbr, c_weight, c_diag, c_mass, c_coords, n_red, agg


@nb.njit(cache=_CACHE)
def _gs_from_zero_restrict_weighted(nbr, weight, inv_diag, x, b, n_red, agg, rc):
    """Red-black forward Gauss-Seidel from x = 0, then rc = P^T (b - A x) (weighted stencil)."""
    n = nbr.shape[0]
    for p in range(n_red):
        x[p] = b[p] * inv_diag[p]
    for p in range(n_red, n):
        s = b[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += weight[p, q] * x[m]
        x[p] = s * inv_diag[p]
    rc[:] = 0.0
    for p in range(n_red):
        s = 0.0
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += weight[p, q] * x[m]
        rc[agg[p]] += s


@nb.njit(cache=_CACHE)
def _gs_backward_weighted(nbr, weight, inv_diag, x, b):
    for p in range(nbr.shape[0] - 1, -1, -1):
        s = b[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += weight[p, q] * x[m]
        x[p] = s * inv_diag[p]


@nb.njit(cache=_CACHE)
def _dense(nbr, weight, diag):
    n = nbr.shape[0]
    out = np.zeros((n, n))
    for p in range(n):
        out[p, p] = diag[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                out[p, m] -= weight[p, q]
    return out


@nb.njit(cache=_CACHE)
def _prolong_add(x, agg, xc, scale):
    for i in range(x.shape[0]):
        x[i] += scale * xc[agg[i]]


#: largest coarsest level solved by dense Cholesky
MAX_DENSE = 4000


class CoarseningStalled(RuntimeError):
    """The 2x2x2 aggregation made no progress (pathological sparse pore sets)."""


class _Level:
    """One coarse level: weighted 7-point stencil, red-black numbered."""

    __slots__ = ("nbr", "weight", "base_diag", "mass", "inv_diag", "n_red", "agg", "n")

    def __init__(self, nbr, weight, diag, mass, n_red):
        self.nbr = nbr
        self.weight = weight
        self.base_diag = diag
        self.mass = mass
        self.n_red = n_red
        self.n = diag.shape[0]
        self.inv_diag = 1.0 / diag
        self.agg = None  # aggregation to the next level

    def set_shift(self, shift: float) -> None:
        self.inv_diag = 1.0 / (self.base_diag + shift * self.mass)


class AggregationMultigrid:
    """V-cycle preconditioner for ``A + shift * M`` (M the voxel mass, identity on the fine grid).

    Parameters
    ----------
    nbr, diag : numpy.ndarray
        Neighbour table (n, 6) and diagonal (n,) of the fine operator A (see ``_kernels``),
        whose unknowns are numbered red-black.
    coords : numpy.ndarray
        (n, 3) integer grid coordinates of the unknowns.
    coarsest : int
        Stop coarsening below this many unknowns; the coarsest level is solved exactly.

    Notes
    -----
    The Galerkin coarse operator of ``A + shift I`` is ``P^T A P + shift P^T P`` and
    ``P^T P`` is diagonal (aggregate sizes), so one hierarchy serves every shift: the
    frequency-domain solves reuse it with ``set_shift`` (real shift ``omega h^2 / D``, which
    preconditions ``A + i omega h^2 / D`` with eigenvalue ratios of modulus in [1/sqrt 2, 1]).
    """

    def __init__(self, nbr, diag, coords, *, coarsest: int = 400):
        self.nbr = nbr
        self.base_diag = diag
        # unknowns are numbered red-black (see _kernels.number_unknowns): red ones first
        self.n_red = int(np.count_nonzero(np.asarray(coords).sum(axis=1) % 2 == 0))
        self.aggregations: list[tuple[np.ndarray, int]] = []
        self.levels: list[_Level] = []  # coarse levels (the fine level is nbr/diag)
        level_nbr, level_weight = nbr, np.ones(nbr.shape, dtype=np.float64)
        level_diag, level_mass = diag, np.ones(diag.shape[0])
        level_coords = np.asarray(coords, dtype=np.int32)
        while level_diag.shape[0] > coarsest and len(self.levels) < 20:
            c_nbr, c_weight, c_diag, c_mass, c_coords, n_red, agg = _coarsen(
                level_nbr, level_weight, level_diag, level_mass, level_coords
            )
            if c_diag.shape[0] >= level_diag.shape[0]:
                break
            self.aggregations.append((agg, c_diag.shape[0]))
            self.levels.append(_Level(c_nbr, c_weight, c_diag, c_mass, n_red))
            level_nbr, level_weight, level_diag = c_nbr, c_weight, c_diag
            level_mass, level_coords = c_mass, c_coords
        if level_diag.shape[0] > MAX_DENSE:
            raise CoarseningStalled(
                f"aggregation stopped at {level_diag.shape[0]} unknowns; use Jacobi instead"
            )
        # the last level is solved densely
        if self.levels:
            self.levels.pop()
        self.coarse_base = _dense(level_nbr, level_weight, level_diag)
        self.coarse_mass = level_mass
        self.scale = COARSE_SCALE
        self.set_shift(0.0)

    def set_shift(self, shift: float) -> None:
        """Precondition ``A + shift I`` from now on."""
        self.diag = self.base_diag + shift
        self.inv_diag = 1.0 / self.diag
        for lv in self.levels:
            lv.set_shift(shift)
        coarse = self.coarse_base + np.diag(shift * self.coarse_mass)
        self.coarse_factor = scipy.linalg.cho_factor(coarse)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(r):  # a real preconditioner acts on both parts
            return self._cycle(0, np.ascontiguousarray(r.real)) + 1j * self._cycle(
                0, np.ascontiguousarray(r.imag)
            )
        return self._cycle(0, r)

    def _cycle(self, depth: int, b: np.ndarray) -> np.ndarray:
        if depth == len(self.aggregations):
            return scipy.linalg.cho_solve(self.coarse_factor, b)
        agg, nc = self.aggregations[depth]
        rc = np.empty(nc)
        if depth == 0:
            x = np.empty(self.diag.shape[0])
            _kernels.gs_forward_from_zero_restrict(
                self.nbr, self.inv_diag, x, b, self.n_red, agg, rc
            )
        else:
            lv = self.levels[depth - 1]
            x = np.empty(lv.n)
            _gs_from_zero_restrict_weighted(lv.nbr, lv.weight, lv.inv_diag, x, b, lv.n_red, agg, rc)
        xc = self._cycle(depth + 1, rc)
        _prolong_add(x, agg, xc, self.scale)
        if depth == 0:
            _kernels.gs_backward(self.nbr, self.inv_diag, x, b)
        else:
            _gs_backward_weighted(lv.nbr, lv.weight, lv.inv_diag, x, b)
        return x
