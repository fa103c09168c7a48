"""Benchmark the XCT segmentation: radius-11 morphology and the whole ``segment`` chain.

Side by side in one run:

* the electrode-mask opening with a radius-11 ball (the paper's radius) done through
  distance transforms (ours) against scikit-image's ``opening`` with ``ball(11)`` directly
  and with its ``decomposition="sequence"`` footprint, on the same mask (results compared);
* the whole chain on a noisy DIT phantom (median, mask, unsharp, binarisation, porosity),
  mask built at full resolution and at ``mask_downsample=2``: throughput, peak memory, and
  the porosity error against the planted truth.

Run ``.venv/bin/python benchmarks/bench_segment.py [--quick]``; writes
``benchmarks/results/segment.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_engine.synthetic.phantom import coin_cell_volume, dit_cathode  # noqa: E402
from analysis_engine.tomo.segmentation import ball_opening, segment_electrode  # noqa: E402


def timed(fn, *args, **kwargs):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes")
    args = parser.parse_args()
    from skimage.morphology import ball, opening

    rows: list[str] = []
    # ---- radius-11 opening: ours vs scikit-image
    n = 48 if args.quick else 64
    rng = np.random.default_rng(0)
    mask = np.zeros((n, n, n), dtype=bool)
    c = n // 2
    zz, yy, xx = np.mgrid[:n, :n, :n]
    mask[(zz - c) ** 2 + (yy - c) ** 2 + (xx - c) ** 2 < (0.35 * n) ** 2] = True
    mask[rng.random(mask.shape) < 0.02] = True  # specks for the opening to remove
    mask = np.pad(mask, 12)  # keep the object away from the edge (edge conventions differ)
    ours, t_ours, m_ours = timed(ball_opening, mask, 11)
    direct, t_direct, m_direct = timed(opening, mask, ball(11))
    seq, t_seq, m_seq = timed(opening, mask, ball(11, decomposition="sequence"))
    voxels = mask.size
    rows.append("| opening, ball radius 11 | voxels | time s | Mvoxel/s | peak MiB | vs ours |")
    rows.append("|---|---|---|---|---|---|")
    for name, t, m, res in [
        ("ours (distance transforms)", t_ours, m_ours, ours),
        ("scikit-image opening(ball(11))", t_direct, m_direct, direct),
        ("scikit-image, decomposition='sequence'", t_seq, m_seq, seq),
    ]:
        agree = "identical" if np.array_equal(res, ours) else f"{(res != ours).mean():.2%} differ"
        rows.append(
            f"| {name} | {voxels:,} | {t:.2f} | {voxels / t / 1e6:.2f} | {m:.0f} | "
            f"{t / t_ours:.1f}x time, {agree} |"
        )
    print("\n".join(rows), flush=True)

    # ---- whole chain on a noisy DIT phantom
    shape = (96, 128, 128) if args.quick else (160, 192, 192)
    ph = dit_cathode(shape, seed=1)
    vol = coin_cell_volume(ph, casing=False, blur_sigma=0.8, noise=0.12, seed=2)
    truth = np.asarray(ph.porosity_by_region)
    rows.append("")
    rows.append(
        "| segment chain (radius 11) | voxels | time s | Mvoxel/s | peak MiB | "
        "max region error vol% |"
    )
    rows.append("|---|---|---|---|---|---|")
    for k in (1, 2):
        res, t, m = timed(segment_electrode, vol, mask_downsample=k)
        err = np.abs(res.porosity_by_region - truth).max() * 100
        rows.append(
            f"| mask_downsample={k} | {vol.size:,} | {t:.2f} | {vol.size / t / 1e6:.2f} | "
            f"{m:.0f} | {err:.2f} |"
        )
        print(rows[-1], flush=True)
    rows.append("")
    rows.append(
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, shared 2-core VM, "
        f"numpy {np.__version__}; opening on {mask.shape}, chain on {shape} "
        f"({'--quick' if args.quick else 'default'} scale). Peak memory is tracemalloc's "
        "peak of numpy allocations during the call."
    )
    out = Path(__file__).resolve().parent / "results" / "segment.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# segment benchmark\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows[-1:]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
