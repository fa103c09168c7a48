"""FBP throughput: the default backend against astra-toolbox's CPU FBP and algotom, side by side.

Slices per second for sinograms of WIDTH columns x ANGLES angles (issue 6: 2048 x 1800), and
the peak resident memory of a worker process doing it (each backend runs in its own process).
Writes benchmarks/results/tomo.md.

    .venv/bin/python benchmarks/bench_tomo.py            # 2048 wide, 1800 angles
    .venv/bin/python benchmarks/bench_tomo.py --quick    # 1024 wide, 900 angles
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, how, slices per call)
CASES = [
    ("native (default)", "native", 16),
    ("astra FBP (CPU)", "astra", 1),
    ("algotom fbp_reconstruction", "algotom-own", 1),
]


def _sinograms(n_slices: int, n_angles: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    from analysis_engine.synthetic.projections import forward_project

    mid = (width - 1) / 2
    y, x = np.ogrid[:width, :width]
    image = np.zeros((width, width), np.float32)
    image[(x - mid) ** 2 + (y - mid) ** 2 < (0.45 * width) ** 2] = 1.0 / width
    image[(x - mid - width / 6) ** 2 + (y - mid) ** 2 < (width / 10) ** 2] = 3.0 / width
    angles = np.arange(n_angles) * np.pi / n_angles
    sino = forward_project(image[None], angles)[0]
    return np.repeat(sino[None], n_slices, axis=0), angles


def run_one(how: str, n_slices: int, n_angles: int, width: int) -> dict:
    from analysis_engine.tomo.backends import fbp

    sinograms, angles = _sinograms(n_slices, n_angles, width)
    center = (width - 1) / 2
    # warm-up (numba compilation / caches) on a tiny problem
    fbp(sinograms[:1, :8, :64], angles[:8], 31.5, backend="native")
    start = time.perf_counter()
    if how == "algotom-own":
        from algotom.rec.reconstruction import fbp_reconstruction

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fbp_reconstruction(
                sinograms[0], center, angles=angles, apply_log=False, filter_name=None, gpu=False
            )
            start = time.perf_counter()  # the first call compiled algotom's kernel
            recon = fbp_reconstruction(
                sinograms[0], center, angles=angles, apply_log=False, filter_name=None, gpu=False
            )
    else:
        recon = fbp(sinograms, angles, center, backend=how)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "slices": n_slices,
        "peak_mb": peak_mb,
        "checksum": float(np.asarray(recon).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024 x 900 instead of 2048 x 1800")
    parser.add_argument(
        "--one", nargs=4, metavar=("HOW", "SLICES", "ANGLES", "WIDTH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        how, n_slices, n_angles, width = args.one
        print(json.dumps(run_one(how, int(n_slices), int(n_angles), int(width))))
        return
    width, n_angles = (1024, 900) if args.quick else (2048, 1800)
    rows = []
    for label, how, n_slices in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--one", how, str(n_slices), str(n_angles), str(width)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["rate"] = result["slices"] / result["seconds"]
        rows.append((label, result))
        print(
            f"{label:30s} {result['rate']:.3f} slices/s  peak {result['peak_mb']:.0f} MB",
            flush=True,
        )
    astra_rate = next(r["rate"] for label, r in rows if label.startswith("astra"))
    lines = [
        f"| backend | slices/s ({width} wide, {n_angles} angles) | x astra CPU | "
        "slices per call | peak RSS per worker |",
        "|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['rate']:.3f} | {r['rate'] / astra_rate:.1f} | {r['slices']} | "
            f"{r['peak_mb']:.0f} MB |"
        )
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"no GPU; shared with other jobs while measured"
    )
    lines.append("")
    lines.append(
        f"Machine: {machine}. Scale: {width} x {n_angles}, ram-lak filter, "
        "one run per backend, each in its own process."
    )
    text = "\n".join(lines) + "\n"
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tomo.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
