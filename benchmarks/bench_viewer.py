"""Slice latency of the viewer's read path for 2048^2 slices under 10 concurrent viewers.

Writes a reconstruction-shaped volume (``--slices`` x 2048 x 2048 float32, chunked one slice per
chunk as ``ReconstructionWriter`` does), then 10 threads each request distinct slices through
what the slice endpoint runs on a cache miss: ``io.slices.read_plane`` + ``preview.block_mean``
to 512 px (``viewer.services.read_view`` minus the cache). Side by side: a plain h5py read of
the same full slice (the floor) and the full-resolution plane without downsampling. Reports
p50/p95 per request; the cached path is a dict lookup and is not timed.

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
from analysis_engine.io.slices import read_plane  # noqa: E402
from analysis_engine.preview import block_mean, view_step  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=24)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--requests", type=int, default=8)
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
        "Run: `.venv/bin/python benchmarks/bench_viewer.py` on the shared 2-core dev machine.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
