"""Benchmark: registration of an 80 x 80 XCT-like map onto a Compton-like image.

Side by side on the same synthetic pairs (known shift, rotation, scale; different blur and
noise; same and inverted contrast):

- CorreLi ``register_images``: phase-correlation start, then Mattes MI (default) or the own
  NGF simplex refinement (``refine="ngf"``);
- baseline ``skimage.registration.phase_cross_correlation`` (translation only, 1/20 px);
- SimpleITK alone: Similarity2D + Mattes mutual information + regular-step gradient descent,
  2-level pyramid, centred start (the library alternative the issue names).

Run: ``.venv/bin/python benchmarks/bench_registration.py [--quick]``; writes
``benchmarks/results/registration.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_engine.registration import SimilarityTransform2D, register_images  # noqa: E402

CENTER = (39.5, 39.5)


def truth_field(seed):
    rng = np.random.default_rng(seed)
    k = rng.uniform(0.08, 0.35, 40)
    ang = rng.uniform(0, 2 * np.pi, 40)
    ky, kx, ph, amp = (
        k * np.sin(ang),
        k * np.cos(ang),
        rng.uniform(0, 2 * np.pi, 40),
        rng.normal(size=40),
    )
    amp /= np.sqrt(40)

    def field(y, x, inverted):
        v = sum(a * np.cos(b * y + c * x + p) for a, b, c, p in zip(amp, ky, kx, ph, strict=True))
        solid = expit(v / 0.15)
        disc = expit((32 - np.hypot(y - CENTER[0], x - CENTER[1])) / 0.7)
        return disc * ((1 - solid) if inverted else solid)

    return field


def render(field, transform=None, inverted=False, sub=4):
    m = np.eye(3) if transform is None else transform.matrix(CENTER, CENTER)
    iy, ix = np.mgrid[0:80, 0:80].astype(float)
    off = (np.arange(sub) + 0.5) / sub - 0.5
    acc = np.zeros((80, 80))
    for oy in off:
        for ox in off:
            y, x = iy + oy, ix + ox
            acc += field(
                m[0, 0] * y + m[0, 1] * x + m[0, 2], m[1, 0] * y + m[1, 1] * x + m[1, 2], inverted
            )
    return acc / sub**2


def make_case(seed, inverted):
    rng = np.random.default_rng(seed)
    true = SimilarityTransform2D(
        (rng.uniform(-4, 4), rng.uniform(-4, 4)), rng.uniform(-8, 8), rng.uniform(0.95, 1.05)
    )
    field = truth_field(seed)
    fixed = rng.poisson(ndimage.gaussian_filter(render(field), 1.2) * 500) / 500.0
    moving = ndimage.gaussian_filter(render(field, true, inverted), 0.6)
    moving = moving + rng.normal(0, 0.03, moving.shape)
    return moving, fixed, true


def correli(moving, fixed):
    return register_images(moving, fixed).transform


def correli_ngf(moving, fixed):
    return register_images(moving, fixed, refine="ngf").transform


def skimage_baseline(moving, fixed):
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(fixed, moving, upsample_factor=20)
    return SimilarityTransform2D((float(shift[0]), float(shift[1])), 0.0, 1.0)


def simpleitk(moving, fixed):
    import SimpleITK as sitk

    f = sitk.GetImageFromArray(fixed.astype(np.float32))
    m = sitk.GetImageFromArray(moving.astype(np.float32))
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.NONE)  # all pixels: deterministic
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=300, relaxationFactor=0.7
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1.0, 0.0])
    init = sitk.Similarity2DTransform()
    init.SetCenter((CENTER[1], CENTER[0]))
    reg.SetInitialTransform(init, inPlace=False)
    out = sitk.Similarity2DTransform(reg.Execute(f, m).GetNthTransform(0))
    # SimpleITK maps fixed -> moving points in (x, y); invert to CorreLi's moving -> fixed.
    s_itk, a_itk = out.GetScale(), out.GetAngle()
    tx, ty = out.GetTranslation()
    s, theta = 1.0 / s_itk, -a_itk
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    t_xy = -s * rot @ np.array([tx, ty])
    return SimilarityTransform2D((t_xy[1], t_xy[0]), np.rad2deg(theta), s)


METHODS = {
    "CorreLi (phase-corr. start + Mattes MI, default)": correli,
    "CorreLi (phase-corr. start + own NGF)": correli_ngf,
    "skimage phase_cross_correlation": skimage_baseline,
    "SimpleITK Mattes MI alone (centred start)": simpleitk,
}


def run(n_cases):
    rows = []
    for inverted in (False, True):
        cases = [make_case(seed, inverted) for seed in range(n_cases)]
        for name, fn in METHODS.items():
            shift_err, rot_err, times, peaks, failures = [], [], [], [], 0
            for moving, fixed, true in cases:
                t0 = time.perf_counter()
                try:
                    found = fn(moving, fixed)
                except Exception:  # noqa: BLE001 - a refusal counts as a failure
                    found = None
                times.append(time.perf_counter() - t0)
                # Peak memory in a second run: tracemalloc slows numpy-heavy code.
                tracemalloc.start()
                try:
                    fn(moving, fixed)
                except Exception:  # noqa: BLE001
                    pass
                peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
                tracemalloc.stop()
                if found is None:
                    failures += 1
                    continue
                # Error at the map: displacement of the centre and of a point 30 px out.
                shift_err.append(np.hypot(*np.subtract(found.shift_px, true.shift_px)))
                rot_err.append(abs(found.rotation_deg - true.rotation_deg))
            rows.append(
                {
                    "contrast": "inverted" if inverted else "same",
                    "method": name,
                    "median_shift_err_px": float(np.median(shift_err))
                    if shift_err
                    else float("nan"),
                    "max_shift_err_px": float(np.max(shift_err)) if shift_err else float("nan"),
                    "median_rot_err_deg": float(np.median(rot_err)) if rot_err else float("nan"),
                    "failed": failures,
                    "ms_per_pair": 1000 * float(np.median(times)),
                    "peak_mib": float(np.max(peaks)),
                }
            )
            print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 pairs per contrast instead of 12")
    args = parser.parse_args()
    n = 4 if args.quick else 12
    rows = run(n)
    base = {r["contrast"]: r["ms_per_pair"] for r in rows if r["method"].startswith("skimage")}
    lines = [
        "| contrast | method | median shift err (px) | max shift err (px) | median rot err (deg) "
        "| failed | ms / pair | time vs skimage | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['contrast']} | {r['method']} | {r['median_shift_err_px']:.3f} | "
            f"{r['max_shift_err_px']:.3f} | {r['median_rot_err_deg']:.3f} | {r['failed']}/{n} | "
            f"{r['ms_per_pair']:.0f} | {r['ms_per_pair'] / base[r['contrast']]:.0f}x | "
            f"{r['peak_mib']:.1f} |"
        )
    lines.append("")
    lines.append(
        f"{n} synthetic 80 x 80 pairs per contrast (shift +-4 px, rotation +-8 deg, scale "
        f"0.95-1.05; fixed blur 1.2 px + Poisson 500, moving blur 0.6 px + 3 % noise); "
        f"{platform.machine()} {platform.processor() or ''}, shared 2-core machine, "
        f"Python {platform.python_version()}; time = median wall per pair."
    )
    out = Path(__file__).resolve().parent / "results" / "registration.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
