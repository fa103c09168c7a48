"""Slice latency of the viewer's read path for 2048^2 slices under 10 concurrent viewers.

Writes a reconstruction-shaped volume (``--slices`` x 2048 x 2048 float32, chunked one slice per
chunk as ``ReconstructionWriter`` does), then 10 threads each request distinct slices through
what the slice endpoint runs on a cache miss: ``io.slices.read_plane`` + ``preview.block_mean``
to 512 px (``viewer.services.read_view`` minus the cache). Side by side: a plain h5py read of
the same full slice (the floor) and the full-resolution plane without downsampling. Reports
p50/p95 per request; the cached path is a dict lookup and is not timed.

Side planes (y and x) of a deeper volume (``--side-shape``, default 256 x 1024 x 1024, 1 GiB,
chunked one slice per chunk): read straight from the file (every chunk touched; the x plane
reads the whole file) against a plane of the reduced copy the viewer builds once per volume
(``viewer.services.ensure_view_volume``: one pass along z, 3D block mean, 32^3 chunks); the
one-off build time is reported beside them.

    .venv/bin/python benchmarks/bench_viewer.py [--slices 24] [--viewers 10] [--requests 8]

Writes ``benchmarks/results/viewer_latency.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis_engine.io.nxtomo import RECONSTRUCTION_PATH, ReconstructionWriter  # noqa: E402
from analysis_engine.io.slices import (  # noqa: E402
    VIEW_VOLUME_PATH,
    iter_volume_slabs,
    read_plane,
    write_view_volume,
)
from analysis_engine.preview import block_mean, block_reduce_3d, view_step  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "viewer_latency.md"


def p(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def run(label, fn, path, n_slices, viewers, requests):
    def viewer(v):
        times = []
        for r in range(requests):
            index = (v * requests + r) % n_slices
            t = time.perf_counter()
            fn(path, index)
            times.append(time.perf_counter() - t)
        return times

    with ThreadPoolExecutor(viewers) as pool:
        times = [t for ts in pool.map(viewer, range(viewers)) for t in ts]
    return label, p(times, 50), p(times, 95), len(times)


def h5py_floor(path, index):
    with h5py.File(path, "r") as f:
        return f[RECONSTRUCTION_PATH][index]


def full_plane(path, index):
    return read_plane(path, RECONSTRUCTION_PATH, axis=0, index=index)


def viewer_plane(path, index):
    plane = read_plane(path, RECONSTRUCTION_PATH, axis=0, index=index)
    return block_mean(plane, step=view_step(plane.shape, max_pixels=512))


def build_view_volume(path, shape, step, out):
    reduced = tuple(-(-n // step) for n in shape)
    slabs = (
        (start // step, block_reduce_3d(slab, step=step))
        for start, slab in iter_volume_slabs(path, RECONSTRUCTION_PATH, thickness=step)
    )
    write_view_volume(out, reduced, np.float32, slabs)


def side_rows(args, tmp):
    shape = tuple(int(v) for v in args.side_shape.split("x"))
    path = Path(tmp) / "deep.h5"
    rng = np.random.default_rng(1)
    with ReconstructionWriter(path, shape, center_of_rotation=0.0, voxel_size_um=1.0) as w:
        for z in range(0, shape[0], 16):
            k = min(16, shape[0] - z)
            w.write(z, rng.random((k,) + shape[1:], dtype=np.float32))
    rows = []
    for axis in (1, 2):
        plane = tuple(n for i, n in enumerate(shape) if i != axis)
        step = view_step(plane, max_pixels=512)

        def direct(p, index, axis=axis, step=step):
            full = read_plane(p, RECONSTRUCTION_PATH, axis=axis, index=index)
            return block_mean(full, step=step)

        out = Path(tmp) / f"view{step}.h5"
        if not out.exists():
            t = time.perf_counter()
            build_view_volume(path, shape, step, out)
            build_s = time.perf_counter() - t
        else:
            build_s = 0.0

        def reduced(p, index, axis=axis, step=step, out=out):
            return read_plane(out, VIEW_VOLUME_PATH, axis=axis, index=index // step)

        n = shape[axis]
        name = "y" if axis == 1 else "x"
        rows.append(
            run(f"{name} plane, direct read + block_mean", direct, path, n, args.side_viewers, 1)
        )
        rows.append(run(f"{name} plane, reduced copy", reduced, path, n, args.viewers, 8))
        rows.append((f"{name}: one-off build of the reduced copy (step {step})", build_s * 1000))
    return shape, rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=24)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--side-shape", default="256x1024x1024")
    ap.add_argument("--side-viewers", type=int, default=4, help="direct side reads are slow")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recon.h5"
        rng = np.random.default_rng(0)
        shape = (args.slices, args.size, args.size)
        with ReconstructionWriter(path, shape, center_of_rotation=1023.5, voxel_size_um=7.91) as w:
            for z in range(args.slices):
                w.write(z, rng.random((1, args.size, args.size), dtype=np.float32))
        rows = [
            run(label, fn, path, args.slices, args.viewers, args.requests)
            for label, fn in (
                ("h5py read of the slice (floor)", h5py_floor),
                ("io.slices.read_plane, full resolution", full_plane),
                ("viewer miss: read_plane + block_mean to 512 px", viewer_plane),
            )
        ]
        path.unlink()
        side_shape, side = side_rows(args, tmp)
    floor_p95 = rows[0][2]
    lines = [
        "# Viewer slice latency",
        "",
        f"{args.size}^2 float32 slices of a {args.slices}-slice volume (one chunk per slice), "
        f"{args.viewers} concurrent viewers x {args.requests} requests each, distinct slices "
        "(cache misses; the OS page cache is warm after the file is written).",
        "",
        "| path | p50 (ms) | p95 (ms) | requests | p95 / floor |",
        "|---|---|---|---|---|",
        *(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]} | {r[2] / floor_p95:.2f} |" for r in rows),
        "",
        "## Side planes of a deep volume",
        "",
        f"{' x '.join(map(str, side_shape))} float32 volume, one chunk per z slice; views "
        "downsampled to 512 px. Direct reads run with "
        f"{args.side_viewers} concurrent viewers x 1 request, the reduced copy with "
        f"{args.viewers} x 8 (distinct planes, cache misses).",
        "",
        "| path | p50 (ms) | p95 (ms) | requests | p95 direct / p95 reduced |",
        "|---|---|---|---|---|",
    ]
    for i in range(0, len(side), 3):
        direct, reduced, build = side[i], side[i + 1], side[i + 2]
        lines.append(f"| {direct[0]} | {direct[1]:.1f} | {direct[2]:.1f} | {direct[3]} | |")
        lines.append(
            f"| {reduced[0]} | {reduced[1]:.1f} | {reduced[2]:.1f} | {reduced[3]} "
            f"| {direct[2] / reduced[2]:.0f} |"
        )
        once = f"{build[1]:.0f} (once)" if build[1] else "shared with the y copy (same step)"
        lines.append(f"| {build[0]} | {once} | | 1 | |")
    lines += [
        "",
        "Run: `.venv/bin/python benchmarks/bench_viewer.py` on the shared 2-core dev machine.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
