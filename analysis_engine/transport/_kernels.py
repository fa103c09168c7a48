"""Numba kernels behind the native transport solver (private).

The pore voxels that take part in a solve are numbered 0..n-1 in C order of a volume whose
transport axis is axis 0. Each unknown stores the indices of its six face neighbours
(``-1`` where the neighbour is solid, outside the cluster or outside the volume) and how many
Dirichlet faces it touches on the inlet (index 0) and outlet (index -1) side of axis 0.

Finite-volume discretisation with unit voxels: each open pore/pore face has conductance 1, a
pore voxel face lying on a Dirichlet boundary has conductance 2 (the boundary value sits on
the face, half a voxel from the voxel centre, as in TauFactor), every other face carries no
flux. The matrix is symmetric positive definite; the frequency-domain matrix adds
``i * sigma`` to its diagonal (complex symmetric).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_CACHE = True


@nb.njit(cache=_CACHE)
def number_unknowns(mask):
    """Number the voxels of ``mask`` red-black: returns (index grid, coords (n, 3), n).

    Voxels with even ``k + j + i`` come first, odd ones after, each in C order. A "red"
    voxel's face neighbours are all "black", so a Gauss-Seidel sweep in this order is a
    red-black sweep whose updates within a colour do not depend on one another (fast, and a
    better multigrid smoother). The index grid holds -1 outside ``mask``.
    """
    nz, ny, nx = mask.shape
    index = np.full((nz, ny, nx), -1, dtype=np.int32)
    count = 0
    for colour in range(2):
        for k in range(nz):
            for j in range(ny):
                for i in range(nx):
                    if mask[k, j, i] and (k + j + i) % 2 == colour:
                        index[k, j, i] = count
                        count += 1
    coords = np.empty((count, 3), dtype=np.int32)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                p = index[k, j, i]
                if p >= 0:
                    coords[p, 0] = k
                    coords[p, 1] = j
                    coords[p, 2] = i
    return index, coords, count


@nb.njit(cache=_CACHE)
def build_neighbours(index, n):
    """Neighbour table (n, 6) int32 and inlet/outlet flags (n,) int8 for an index grid."""
    nz, ny, nx = index.shape
    nbr = np.full((n, 6), -1, dtype=np.int32)
    inlet = np.zeros(n, dtype=np.int8)
    outlet = np.zeros(n, dtype=np.int8)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                p = index[k, j, i]
                if p < 0:
                    continue
                if k > 0:
                    nbr[p, 0] = index[k - 1, j, i]
                else:
                    inlet[p] = 1
                if k < nz - 1:
                    nbr[p, 1] = index[k + 1, j, i]
                else:
                    outlet[p] = 1
                if j > 0:
                    nbr[p, 2] = index[k, j - 1, i]
                if j < ny - 1:
                    nbr[p, 3] = index[k, j + 1, i]
                if i > 0:
                    nbr[p, 4] = index[k, j, i - 1]
                if i < nx - 1:
                    nbr[p, 5] = index[k, j, i + 1]
    return nbr, inlet, outlet


@nb.njit(cache=_CACHE)
def diagonal(nbr, boundary_weight):
    """Diagonal of the operator: open neighbour faces + 2 per Dirichlet face."""
    n = nbr.shape[0]
    d = np.empty(n, dtype=np.float64)
    for p in range(n):
        s = 0.0
        for q in range(6):
            if nbr[p, q] >= 0:
                s += 1.0
        d[p] = s + 2.0 * boundary_weight[p]
    return d


@nb.njit(cache=_CACHE)
def _matvec_dot(nbr, diag, x, out):
    """out = A x; return x . out."""
    n = nbr.shape[0]
    acc = 0.0
    for p in range(n):
        s = diag[p] * x[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s -= x[m]
        out[p] = s
        acc += x[p] * s
    return acc


@nb.njit(cache=_CACHE)
def residual(nbr, diag, x, b, out):
    """out = b - A x; return ||out||^2."""
    n = nbr.shape[0]
    acc = 0.0
    for p in range(n):
        s = diag[p] * x[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s -= x[m]
        r = b[p] - s
        out[p] = r
        acc += r * r
    return acc


@nb.njit(cache=_CACHE)
def gs_backward(nbr, inv_diag, x, b):
    """One backward Gauss-Seidel sweep on A x = b (x updated in place)."""
    for p in range(nbr.shape[0] - 1, -1, -1):
        s = b[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += x[m]
        x[p] = s * inv_diag[p]


@nb.njit(cache=_CACHE)
def gs_forward_from_zero_restrict(nbr, inv_diag, x, b, n_red, agg, rc):
    """Red-black forward Gauss-Seidel from x = 0, then rc = P^T (b - A x).

    With red-black numbering (red unknowns 0..n_red-1, whose neighbours are all black) the
    red update from zero needs no neighbours, the black rows have zero residual after their
    update, and a red row's residual is just the sum of its black neighbours: half the work of
    a general sweep plus residual.
    """
    n = nbr.shape[0]
    for p in range(n_red):
        x[p] = b[p] * inv_diag[p]
    for p in range(n_red, n):
        s = b[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += x[m]
        x[p] = s * inv_diag[p]
    rc[:] = 0.0
    for p in range(n_red):
        s = 0.0
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s += x[m]
        rc[agg[p]] += s


@nb.njit(cache=_CACHE)
def _update_xr(x, r, z, p_vec, q_vec, inv_diag, alpha):
    n = x.shape[0]
    rz = 0.0
    rr = 0.0
    for i in range(n):
        x[i] += alpha * p_vec[i]
        ri = r[i] - alpha * q_vec[i]
        r[i] = ri
        zi = ri * inv_diag[i]
        z[i] = zi
        rz += ri * zi
        rr += ri * ri
    return rz, rr


@nb.njit(cache=_CACHE)
def _update_p(p_vec, z, beta):
    for i in range(p_vec.shape[0]):
        p_vec[i] = z[i] + beta * p_vec[i]


@nb.njit(cache=_CACHE)
def _precondition(r, inv_diag, z):
    acc = 0.0
    for i in range(r.shape[0]):
        zi = r[i] * inv_diag[i]
        z[i] = zi
        acc += r[i] * zi
    return acc


@nb.njit(cache=_CACHE)
def dot(a, b):
    """Serial dot product (BLAS threads fight over busy cores)."""
    acc = 0.0
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@nb.njit(cache=_CACHE)
def _update_xr_plain(x, r, p_vec, q_vec, alpha):
    rr = 0.0
    for i in range(x.shape[0]):
        x[i] += alpha * p_vec[i]
        ri = r[i] - alpha * q_vec[i]
        r[i] = ri
        rr += ri * ri
    return rr


def pcg(nbr, diag, b, x, *, rtol, max_iter, check_every=0, check=None, preconditioner=None):
    """Preconditioned conjugate gradients on the neighbour-table operator; x updated in place.

    ``preconditioner`` is a symmetric positive definite callable ``z = M(r)``; None means
    Jacobi, fused into the vector updates. Stops when ``||b - A x|| <= rtol ||b||`` and, when
    ``check`` is given, ``check(x)`` (called every ``check_every`` iterations and at the end)
    returns True. Returns ``(iterations, relative residual, converged)``.
    """
    n = b.shape[0]
    r = np.empty(n)
    q = np.empty(n)
    inv_diag = 1.0 / diag
    b_norm = float(np.sqrt(np.dot(b, b))) or 1.0
    rr = residual(nbr, diag, x, b, r)
    if preconditioner is None:
        z = np.empty(n)
        rz = _precondition(r, inv_diag, z)
    else:
        z = preconditioner(r)
        rz = dot(r, z)
    p = z.copy()
    it = 0
    rel = float(np.sqrt(rr)) / b_norm
    while it < max_iter:
        if rel <= rtol and (check is None or check(x)):
            return it, rel, True
        pq = _matvec_dot(nbr, diag, p, q)
        if pq <= 0.0:
            break
        alpha = rz / pq
        if preconditioner is None:
            rz_new, rr = _update_xr(x, r, z, p, q, inv_diag, alpha)
        else:
            rr = _update_xr_plain(x, r, p, q, alpha)
            z = preconditioner(r)
            rz_new = dot(r, z)
        _update_p(p, z, rz_new / rz)
        rz = rz_new
        it += 1
        rel = float(np.sqrt(rr)) / b_norm
        if check is not None and check_every and it % check_every == 0 and rel > rtol:
            check(x)
    # recompute the true residual: the recursive one drifts in long runs
    rel = float(np.sqrt(residual(nbr, diag, x, b, r))) / b_norm
    converged = rel <= rtol and (check is None or check(x))
    return it, rel, converged


# --------------------------------------------------------------------------------------------
# complex symmetric (shifted) systems: (A + i sigma I) x = b, conjugate orthogonal CG (COCG)


@nb.njit(cache=_CACHE)
def _cmatvec_dot(nbr, diag, shift, x, out):
    """out = (A + i shift) x; return the unconjugated product x^T out."""
    n = nbr.shape[0]
    acc = 0.0 + 0.0j
    for p in range(n):
        s = (diag[p] + 1j * shift) * x[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s -= x[m]
        out[p] = s
        acc += x[p] * s
    return acc


@nb.njit(cache=_CACHE)
def cresidual(nbr, diag, shift, x, b, out):
    n = nbr.shape[0]
    acc = 0.0
    for p in range(n):
        s = (diag[p] + 1j * shift) * x[p]
        for q in range(6):
            m = nbr[p, q]
            if m >= 0:
                s -= x[m]
        r = b[p] - s
        out[p] = r
        acc += r.real * r.real + r.imag * r.imag
    return acc


@nb.njit(cache=_CACHE)
def _cupdate_xr(x, r, z, p_vec, q_vec, inv_diag, alpha):
    n = x.shape[0]
    rz = 0.0 + 0.0j
    rr = 0.0
    for i in range(n):
        x[i] += alpha * p_vec[i]
        ri = r[i] - alpha * q_vec[i]
        r[i] = ri
        zi = ri * inv_diag[i]
        z[i] = zi
        rz += ri * zi
        rr += ri.real * ri.real + ri.imag * ri.imag
    return rz, rr


@nb.njit(cache=_CACHE)
def _cupdate_p(p_vec, z, beta):
    for i in range(p_vec.shape[0]):
        p_vec[i] = z[i] + beta * p_vec[i]


@nb.njit(cache=_CACHE)
def _cupdate_xr_plain(x, r, p_vec, q_vec, alpha):
    rr = 0.0
    for i in range(x.shape[0]):
        x[i] += alpha * p_vec[i]
        ri = r[i] - alpha * q_vec[i]
        r[i] = ri
        rr += ri.real * ri.real + ri.imag * ri.imag
    return rr


@nb.njit(cache=_CACHE)
def cdot(a, b):
    """Unconjugated complex dot product a^T b."""
    acc = 0.0 + 0.0j
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


def cocg(nbr, diag, shift, b, x, *, rtol, max_iter, preconditioner=None):
    """Preconditioned COCG for the complex symmetric system (A + i shift I) x = b.

    ``preconditioner`` is a complex-symmetric callable ``z = M(r)`` (a real symmetric one
    qualifies); None means Jacobi, fused into the updates. ``x`` (complex128) is updated in
    place. Returns ``(iterations, relative residual, converged)``.
    """
    n = b.shape[0]
    r = np.empty(n, dtype=np.complex128)
    q = np.empty(n, dtype=np.complex128)
    inv_diag = 1.0 / (diag + 1j * shift)
    b_norm = float(np.linalg.norm(b)) or 1.0
    rr = cresidual(nbr, diag, shift, x, b, r)
    z = r * inv_diag if preconditioner is None else preconditioner(r)
    rz = cdot(r, z)
    p = z.copy()
    it = 0
    rel = float(np.sqrt(rr)) / b_norm
    while it < max_iter and rel > rtol:
        pq = _cmatvec_dot(nbr, diag, shift, p, q)
        if pq == 0.0 or rz == 0.0:
            break
        alpha = rz / pq
        if preconditioner is None:
            rz_new, rr = _cupdate_xr(x, r, z, p, q, inv_diag, alpha)
        else:
            rr = _cupdate_xr_plain(x, r, p, q, alpha)
            z = preconditioner(r)
            rz_new = cdot(r, z)
        _cupdate_p(p, z, rz_new / rz)
        rz = rz_new
        it += 1
        rel = float(np.sqrt(rr)) / b_norm
    rel = float(np.sqrt(cresidual(nbr, diag, shift, x, b, r))) / b_norm
    return it, rel, rel <= rtol
