"""Numba kernels: per-frame 8-connected clustering of HEXITEC hits and per-pixel histogramming.

Private to :mod:`analysis_engine.events`; the public face is
:class:`analysis_engine.events.clustering.SpectrumAccumulator`.

A frame's hits are clustered with a union-find over the hits of that frame only: each hit is
stamped into an (rows + 2) x (cols + 2) grid (a border of never-stamped cells, so neighbours
need no bounds checks and no division), then joined with hits in the four already-visited
neighbour cells (up-left, up, up-right, left), which covers every 8-connected pair once. The
grid is never cleared: a cell belongs to the current frame only if its stamp is the current
frame's serial number, so the cost is proportional to the number of hits, not pixels.

For the occupancy and pile-up diagnostics every chunk also counts frames by their number of
hit pixels (``occ[k]``: frames with ``k`` hits, masked pixels included), hits per pixel
(``pixhits``) and multi-pixel clusters whose summed energy exceeds ``e_over``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

# Layout of the int64 statistics vector each chunk fills in.
S_EVENTS_IN = 0
S_FRAMES_WITH_HITS = 1
S_CLUSTERS_1 = 2
S_CLUSTERS_2 = 3
S_CLUSTERS_3P = 4
S_COUNTED = 5
S_OUT_OF_RANGE = 6
S_MASKED = 7
S_DROPPED = 8
S_ERROR = 9
S_ERROR_INDEX = 10
S_FRAMES = 11
S_PENDING = 12  # increments waiting in the output buffer
S_SIZE_HIST = 13  # cluster sizes 1..MAX_SIZE_BIN, the last bin collects larger ones
MAX_SIZE_BIN = 9
S_MULTI_OVER = S_SIZE_HIST + MAX_SIZE_BIN  # multi-pixel clusters summing above ``e_over``
N_STATS = S_MULTI_OVER + 1

ERROR_FRAME_DECREASES = 1
ERROR_PIXEL_OUTSIDE = 2

MODE_NONE = 0
MODE_PAPER = 1
MODE_DISCRIMINATE = 2
MODE_ADD = 3

_INITIAL_CAPACITY = 8192
# Histogram increments are buffered and applied in a tight loop: the cube is far larger than
# the caches, and independent increments in a row let the CPU overlap their memory misses.
_FLUSH = 4096


@njit(cache=True, nogil=True, inline="always")
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True, inline="always")
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@njit(cache=True, nogil=True, inline="always")
def _fill(out, stats, p, energy, lo, inv_w, n_bins):
    x = (energy - lo) * inv_w
    if x >= 0.0 and x < n_bins:
        out[stats[S_PENDING]] = p * n_bins + np.int64(x)
        stats[S_PENDING] += 1  # counted (S_COUNTED) when flushed
    else:
        stats[S_OUT_OF_RANGE] += 1


@njit(cache=True, nogil=True)
def _flush(hist, out, stats):
    n = stats[S_PENDING]
    for i in range(n):
        hist[out[i]] += 1
    stats[S_COUNTED] += n
    stats[S_PENDING] = 0


@njit(cache=True, nogil=True)
def _cluster_and_fill(
    k, pix, gpix, en, parent, csize, csum, cmax, cmaxidx, linked, stamp, gidx, serial, width,
    mode, lo, inv_w, n_bins, out, stats, e_over,
):  # fmt: skip
    """Cluster the ``k`` unmasked hits of one frame; queue their bins in ``out`` per ``mode``.

    ``pix`` are detector pixel indices (histogram rows), ``gpix`` the same pixels in the padded
    grid of row length ``width`` (= cols + 2) that ``stamp`` and ``gidx`` cover.
    """
    if k == 1:
        stats[S_CLUSTERS_1] += 1
        stats[S_SIZE_HIST] += 1
        _fill(out, stats, pix[0], en[0], lo, inv_w, n_bins)
        return
    for a in range(k):
        p = gpix[a]
        parent[a] = a
        if stamp[p] == serial:  # two hits in one pixel in one frame: same cluster
            _union(parent, a, gidx[p])
            csize[a] = 2  # marks "not isolated" (see below)
            csize[gidx[p]] = 2
        else:
            stamp[p] = serial
            gidx[p] = a
            csize[a] = 0
    # Most hits have no hit neighbour: histogram them at once and keep the union-find for
    # the rest. ``linked`` lists the hits that touch another hit.
    n_linked = 0
    n_single = 0  # isolated hits, counted locally: fewer stores in the hot loop
    for a in range(k):
        p = gpix[a]
        touches = csize[a] == 2
        q = p - width
        if stamp[q] == serial:
            _union(parent, a, gidx[q])
            touches = True
        if stamp[q - 1] == serial:
            _union(parent, a, gidx[q - 1])
            touches = True
        if stamp[q + 1] == serial:
            _union(parent, a, gidx[q + 1])
            touches = True
        if stamp[p - 1] == serial:
            _union(parent, a, gidx[p - 1])
            touches = True
        if not touches:  # neighbours below or to the right (not yet joined) also count
            q = p + width
            touches = (
                stamp[p + 1] == serial
                or stamp[q] == serial
                or stamp[q - 1] == serial
                or stamp[q + 1] == serial
            )
        if touches:
            linked[n_linked] = a
            n_linked += 1
        else:
            n_single += 1
            _fill(out, stats, pix[a], en[a], lo, inv_w, n_bins)
    stats[S_CLUSTERS_1] += n_single
    stats[S_SIZE_HIST] += n_single
    if n_linked == 0:
        return
    for i in range(n_linked):
        a = linked[i]
        csize[a] = 0
        csum[a] = 0.0
        cmax[a] = -np.inf
    for i in range(n_linked):
        a = linked[i]
        root = _find(parent, a)
        csize[root] += 1
        csum[root] += en[a]
        if en[a] > cmax[root]:  # ties keep the first hit in file order
            cmax[root] = en[a]
            cmaxidx[root] = a
    for i in range(n_linked):
        a = linked[i]
        if parent[a] != a:
            continue
        size = csize[a]
        if size == 1:
            stats[S_CLUSTERS_1] += 1
        elif size == 2:
            stats[S_CLUSTERS_2] += 1
        else:
            stats[S_CLUSTERS_3P] += 1
        stats[S_SIZE_HIST + min(size, MAX_SIZE_BIN) - 1] += 1
        if size > 1 and csum[a] > e_over:
            stats[S_MULTI_OVER] += 1
        if mode == MODE_NONE:
            continue
        if size == 1:
            _fill(out, stats, pix[a], en[a], lo, inv_w, n_bins)
        elif mode == MODE_ADD or (mode == MODE_PAPER and size == 2):
            _fill(out, stats, pix[cmaxidx[a]], csum[a], lo, inv_w, n_bins)
        else:
            stats[S_DROPPED] += size
    if mode == MODE_NONE:
        for i in range(n_linked):
            a = linked[i]
            _fill(out, stats, pix[a], en[a], lo, inv_w, n_bins)


@njit(cache=True, nogil=True)
def events_chunk(
    frame, row, col, values, start, stop, prev_frame, has_prev, gain, offset, apply_cal, mask,
    rows, cols, mode, lo, inv_w, n_bins, hist, stats, e_over, occ, pixhits,
):  # fmt: skip
    """Process events ``start:stop`` (whole frames, sorted by frame) into ``hist``/``stats``."""
    width = cols + 2
    stamp = np.full((rows + 2) * width, -1, dtype=np.int64)
    gidx = np.zeros((rows + 2) * width, dtype=np.int32)
    cap = _INITIAL_CAPACITY
    pix = np.empty(cap, dtype=np.int64)
    gpix = np.empty(cap, dtype=np.int64)
    en = np.empty(cap, dtype=np.float64)
    parent = np.empty(cap, dtype=np.int64)
    csize = np.empty(cap, dtype=np.int64)
    csum = np.empty(cap, dtype=np.float64)
    cmax = np.empty(cap, dtype=np.float64)
    cmaxpix = np.empty(cap, dtype=np.int64)
    linked = np.empty(cap, dtype=np.int64)
    out = np.empty(_FLUSH + cap, dtype=np.int64)
    if start < stop and has_prev and frame[start] < prev_frame:
        stats[S_ERROR] = ERROR_FRAME_DECREASES
        stats[S_ERROR_INDEX] = start
        return
    serial = 0
    i = start
    while i < stop:
        f = frame[i]
        j = i + 1
        while j < stop and frame[j] == f:
            j += 1
        if j < stop and frame[j] < f:
            stats[S_ERROR] = ERROR_FRAME_DECREASES
            stats[S_ERROR_INDEX] = j
            return
        m = j - i
        if m > cap:
            cap = m
            pix = np.empty(cap, dtype=np.int64)
            gpix = np.empty(cap, dtype=np.int64)
            en = np.empty(cap, dtype=np.float64)
            parent = np.empty(cap, dtype=np.int64)
            csize = np.empty(cap, dtype=np.int64)
            csum = np.empty(cap, dtype=np.float64)
            cmax = np.empty(cap, dtype=np.float64)
            cmaxpix = np.empty(cap, dtype=np.int64)
            linked = np.empty(cap, dtype=np.int64)
            _flush(hist, out, stats)
            out = np.empty(_FLUSH + cap, dtype=np.int64)
        stats[S_FRAMES] += 1
        stats[S_FRAMES_WITH_HITS] += 1
        stats[S_EVENTS_IN] += m
        occ[min(m, rows * cols)] += 1
        k = 0
        for e in range(i, j):
            r = np.int64(row[e])
            c = np.int64(col[e])
            if r < 0 or r >= rows or c < 0 or c >= cols:
                stats[S_ERROR] = ERROR_PIXEL_OUTSIDE
                stats[S_ERROR_INDEX] = e
                return
            p = r * cols + c
            pixhits[p] += 1
            if mask[p]:
                stats[S_MASKED] += 1
                continue
            pix[k] = p
            gpix[k] = p + width + 1 + 2 * r  # (r + 1) * width + c + 1
            if apply_cal:
                en[k] = values[e] * gain[p] + offset[p]
            else:
                en[k] = values[e]
            k += 1
        if k > 0:
            _cluster_and_fill(
                k, pix, gpix, en, parent, csize, csum, cmax, cmaxpix, linked, stamp, gidx, serial,
                width, mode, lo, inv_w, n_bins, out, stats, e_over,
            )  # fmt: skip
            serial += 1
            if stats[S_PENDING] >= _FLUSH:
                _flush(hist, out, stats)
        i = j
    _flush(hist, out, stats)


@njit(cache=True, nogil=True, parallel=True)
def events_parallel(
    frame, row, col, values, bounds, prev, has_prev, gain, offset, apply_cal, mask, rows, cols,
    mode, lo, inv_w, n_bins, hist2d, stats2d, e_over, occ2d, pixhits2d,
):  # fmt: skip
    """Run :func:`events_chunk` on ``len(bounds) - 1`` frame-aligned chunks in parallel."""
    n_chunks = bounds.shape[0] - 1
    for t in prange(n_chunks):
        s = bounds[t]
        pv = prev[0]
        hp = has_prev
        if t > 0 and s > 0:
            pv = frame[s - 1]
            hp = True
        events_chunk(
            frame, row, col, values, s, bounds[t + 1], pv, hp, gain, offset, apply_cal, mask,
            rows, cols, mode, lo, inv_w, n_bins, hist2d[t], stats2d[t], e_over, occ2d[t],
            pixhits2d[t],
        )  # fmt: skip


@njit(cache=True, nogil=True)
def frames_chunk(
    frames, f0, f1, threshold_adu, gain, offset, mask, rows, cols, mode, lo, inv_w, n_bins,
    hist, stats, e_over, occ, pixhits,
):  # fmt: skip
    """Find hits (ADU >= per-pixel threshold) in raw frames ``f0:f1``, cluster and histogram."""
    npix = rows * cols
    width = cols + 2
    stamp = np.full((rows + 2) * width, -1, dtype=np.int64)
    gidx = np.zeros((rows + 2) * width, dtype=np.int32)
    pix = np.empty(npix, dtype=np.int64)
    gpix = np.empty(npix, dtype=np.int64)
    en = np.empty(npix, dtype=np.float64)
    parent = np.empty(npix, dtype=np.int64)
    csize = np.empty(npix, dtype=np.int64)
    csum = np.empty(npix, dtype=np.float64)
    cmax = np.empty(npix, dtype=np.float64)
    cmaxpix = np.empty(npix, dtype=np.int64)
    linked = np.empty(npix, dtype=np.int64)
    out = np.empty(_FLUSH + npix, dtype=np.int64)
    serial = 0
    for f in range(f0, f1):
        stats[S_FRAMES] += 1
        img = frames[f]
        n_in = 0
        k = 0
        for r in range(rows):
            base = r * cols
            # a branch-free count first (vectorised by LLVM): most rows hold no hit at all
            n_row = 0
            for c in range(cols):
                n_row += np.int64(img[r, c] >= threshold_adu[base + c])
            if n_row == 0:
                continue
            for c in range(cols):
                p = base + c
                a = img[r, c]
                if a >= threshold_adu[p]:
                    n_in += 1
                    pixhits[p] += 1
                    if mask[p]:
                        stats[S_MASKED] += 1
                    else:
                        pix[k] = p
                        gpix[k] = p + width + 1 + 2 * r
                        en[k] = a * gain[p] + offset[p]
                        k += 1
        occ[n_in] += 1
        if n_in > 0:
            stats[S_FRAMES_WITH_HITS] += 1
            stats[S_EVENTS_IN] += n_in
        if k > 0:
            _cluster_and_fill(
                k, pix, gpix, en, parent, csize, csum, cmax, cmaxpix, linked, stamp, gidx, serial,
                width, mode, lo, inv_w, n_bins, out, stats, e_over,
            )  # fmt: skip
            serial += 1
            if stats[S_PENDING] >= _FLUSH:
                _flush(hist, out, stats)
    _flush(hist, out, stats)


@njit(cache=True, nogil=True, parallel=True)
def frames_parallel(
    frames, bounds, threshold_adu, gain, offset, mask, rows, cols, mode, lo, inv_w, n_bins,
    hist2d, stats2d, e_over, occ2d, pixhits2d,
):  # fmt: skip
    """Run :func:`frames_chunk` on ``len(bounds) - 1`` frame ranges in parallel."""
    n_chunks = bounds.shape[0] - 1
    for t in prange(n_chunks):
        frames_chunk(
            frames, bounds[t], bounds[t + 1], threshold_adu, gain, offset, mask, rows, cols,
            mode, lo, inv_w, n_bins, hist2d[t], stats2d[t], e_over, occ2d[t], pixhits2d[t],
        )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True)
def sum_rows(hist2d, out):
    """``out[i] = sum_t hist2d[t, i]`` (wrapping like numpy's uint32 add), in parallel.

    ``out`` may be ``hist2d[0]`` (an in-place merge: no new cube to allocate and fault in).
    Merging the per-thread cubes serially was the one single-threaded step of a run.
    """
    n = out.shape[0]
    nt = hist2d.shape[0]
    step = 1 << 16
    for b in prange((n + step - 1) // step):
        lo = b * step
        hi = min(lo + step, n)
        for i in range(lo, hi):
            s = hist2d[0, i]
            for t in range(1, nt):
                s += hist2d[t, i]
            out[i] = s


def n_threads() -> int:
    """Number of worker threads numba will use."""
    return int(numba.get_num_threads())
