"""Fourier-space FBP (gridrec-style NUFFT) against the direct back projectors, side by side.

For each detector width (2048 and 4096 columns, 1800 angles over 180 deg) every backend runs
in its own process on the same sinograms and reports slices per second and its peak resident
memory; the Fourier backend's slices are compared with the native FBP's (Pearson r) and with
the phantom. The sinograms are the analytic projections of a phantom of uniform discs (chord
length 2 sqrt(R^2 - s^2) times mu), so no forward projector is involved.
Writes benchmarks/results/fourier.md.

    .venv/bin/python benchmarks/bench_fourier.py                 # 2048 and 4096 wide
    .venv/bin/python benchmarks/bench_fourier.py --widths 2048   # one width
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_ANGLES = 1800
# (label, backend, slices per call): fewer slices for the slow ones so a run fits 2 cores
CASES = [
    ("fourier (NUFFT, this package)", "fourier", 4),
    ("native (direct, numba)", "native", 1),
    ("algotom back_projection_cpu", "algotom", 1),
    ("astra FBP (CPU)", "astra", 1),
]

# discs (x, y as fractions of the width from the centre, radius fraction, mu per pixel * width)
DISCS = [
    (0.0, 0.0, 0.45, 1.0),
    (0.17, 0.0, 0.10, 2.0),
    (-0.15, 0.2, 0.07, -1.0),
    (0.05, -0.25, 0.04, 1.5),
    (-0.2, -0.1, 0.02, 3.0),
]


def phantom_sinograms(n_slices: int, n_angles: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Analytic sinograms of :data:`DISCS` (axis at the detector centre), slices differing by
    a scale factor so a packed pair is not two equal slices."""
    angles = np.arange(n_angles) * np.pi / n_angles
    s = np.arange(width) - (width - 1) / 2
    sino = np.zeros((n_angles, width), np.float64)
    for fx, fy, fr, mu in DISCS:
        s0 = (fx * np.cos(angles) + fy * np.sin(angles)) * width
        radius = fr * width
        sino += (
            2.0 * (mu / width) * np.sqrt(np.clip(radius**2 - (s[None] - s0[:, None]) ** 2, 0, None))
        )
    scale = 1.0 + 0.1 * np.arange(n_slices)
    return (scale[:, None, None] * sino[None]).astype(np.float32), angles


def phantom_image(width: int) -> np.ndarray:
    mid = (width - 1) / 2
    y, x = np.ogrid[:width, :width]
    image = np.zeros((width, width), np.float32)
    for fx, fy, fr, mu in DISCS:
        # pixel (row, col) is at x = col - mid, y = mid - row
        inside = (x - mid - fx * width) ** 2 + (mid - y - fy * width) ** 2 < (fr * width) ** 2
        image[inside] += mu / width
    return image


def run_one(backend: str, n_slices: int, width: int, save: str | None) -> dict:
    from analysis_engine.tomo.backends import fbp

    sinograms, angles = phantom_sinograms(n_slices, N_ANGLES, width)
    center = (width - 1) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fbp(sinograms[:1, :8, :64], angles[:8], 31.5, backend=backend)  # compile / warm up
        start = time.perf_counter()
        recon = fbp(sinograms, angles, center, backend=backend)
        seconds = time.perf_counter() - start
    if save:
        np.save(save, recon[0])
    return {
        "seconds": seconds,
        "slices": n_slices,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _pearson(a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> float:
    return float(np.corrcoef(a[inside], b[inside])[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widths", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument(
        "--native-slices",
        type=int,
        default=1,
        help="slices per native call (it vectorises over the slices of a chunk; the "
        "reconstruct command hands it 16)",
    )
    parser.add_argument("--output", default="fourier.md", help="file under benchmarks/results")
    parser.add_argument(
        "--peers-up-to",
        type=int,
        default=2048,
        help="widths above this run only fourier and native (astra's CPU FBP takes many "
        "minutes per 4096-wide slice on 2 shared cores)",
    )
    parser.add_argument(
        "--one", nargs=4, metavar=("BACKEND", "SLICES", "WIDTH", "SAVE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        backend, n_slices, width, save = args.one
        result = run_one(backend, int(n_slices), int(width), save if save != "-" else None)
        print(json.dumps(result))
        return
    lines = [
        f"| width | backend | slices/s ({N_ANGLES} angles) | x native | slices per call | "
        "peak RSS | r vs native | r vs phantom |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            rows = []
            for label, backend, n_slices in CASES:
                if backend == "native":
                    n_slices = args.native_slices
                if width > args.peers_up_to and backend not in ("fourier", "native"):
                    continue
                save = str(Path(tmp) / f"{backend}_{width}.npy")
                out = subprocess.run(
                    [sys.executable, __file__, "--one", backend, str(n_slices), str(width), save],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result["rate"] = result["slices"] / result["seconds"]
                rows.append((label, backend, result))
                print(
                    f"{width} {label:32s} {result['rate']:.4f} slices/s  "
                    f"peak {result['peak_mb']:.0f} MB",
                    flush=True,
                )
            native = np.load(Path(tmp) / f"native_{width}.npy")
            truth = phantom_image(width)
            mid = (width - 1) / 2
            y, x = np.ogrid[:width, :width]
            inside = (x - mid) ** 2 + (y - mid) ** 2 < (0.48 * width) ** 2
            native_rate = next(r["rate"] for _, b, r in rows if b == "native")
            for label, backend, r in rows:
                recon = np.load(Path(tmp) / f"{backend}_{width}.npy")
                lines.append(
                    f"| {width} | {label} | {r['rate']:.4f} | {r['rate'] / native_rate:.1f} | "
                    f"{r['slices']} | {r['peak_mb']:.0f} MB | "
                    f"{_pearson(recon, native, inside):.4f} | "
                    f"{_pearson(recon, truth, inside):.4f} |"
                )
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU; "
        f"shared with other jobs while measured (load average {os.getloadavg()[0]:.1f} at the end)"
    )
    lines += [
        "",
        f"Machine: {machine}. {N_ANGLES} angles over 180 deg, ram-lak filter, slices as wide as "
        "the detector; each backend in its own process, one after the other in the same run. "
        "Sinograms: analytic projections of five uniform discs; r is Pearson's correlation of "
        "the first slice inside the reconstruction circle.",
    ]
    text = "\n".join(lines) + "\n"
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
