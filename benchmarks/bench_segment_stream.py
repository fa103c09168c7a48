"""Segmentation in blocks against the whole-volume chain: peak memory, time, identical masks.

A noisy DIT coin-cell phantom (disc electrode, ``analysis_engine.synthetic.phantom``) is
written to HDF5; each variant runs in its own Python process, which reports its peak resident
memory (``VmHWM``, reset after the imports) and the resident memory after its imports (the
difference is what the segmentation itself took):

- ``whole``: read the volume, ``segment_electrode`` (everything in memory), masks to HDF5;
- ``blocks N``: ``run_segment`` (the volume read and the masks written block by block,
  blocks of N voxels including their halo).

The masks of every block run are compared voxel by voxel with the whole-volume run.
Writes benchmarks/results/segment_stream.md.

    .venv/bin/python benchmarks/bench_segment_stream.py [--shape 96 640 640] [--downsample 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
import h5py, numpy as np
from analysis_engine.tomo.segmentation import segment_electrode
from analysis_engine.tomo.segment_commands import run_segment
mode, src, out, k, block = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

# the high-water mark survives fork + exec (the parent's phantom): reset it after the imports
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
t0 = time.perf_counter()
if mode == "whole":
    with h5py.File(src) as f:
        volume = f["/volume"][()]
    r = segment_electrode(volume, mask_downsample=k)
    with h5py.File(out, "w") as f:
        f["/electrode_mask"] = r.electrode_mask.astype(np.uint8)
        f["/pore_mask"] = r.pore_mask.astype(np.uint8)
    porosity = r.porosity
else:
    porosity = run_segment(src + ":/volume", out, mask_downsample=k, block_voxels=block)["porosity"]
seconds = time.perf_counter() - t0
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "peak": peak, "base": base, "porosity": porosity}))
"""


def run(mode: str, src: Path, out: Path, k: int, block: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out), str(k), str(block)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(mode, block, result, flush=True)
    return result


def same_masks(a: Path, b: Path) -> bool:
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in ("/electrode_mask", "/pore_mask"):
            da, db = fa[name], fb[name]
            for z in range(0, da.shape[0], 8):
                if not np.array_equal(da[z : z + 8], db[z : z + 8]):
                    return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 640, 640])
    parser.add_argument("--downsample", type=int, default=2)
    parser.add_argument("--blocks", type=int, nargs="+", default=[32 * 2**20, 4 * 2**20])
    args = parser.parse_args()
    from analysis_engine.synthetic.phantom import coin_cell_volume, dit_cathode

    work = Path(tempfile.mkdtemp(prefix="correli-bench-segstream-"))
    ph = dit_cathode(tuple(args.shape), footprint="disc", padding=8, seed=1)
    volume = coin_cell_volume(ph, casing=False, blur_sigma=0.8, noise=0.12, seed=2)
    src = work / "volume.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("/volume", data=volume, chunks=(1, *volume.shape[1:]))
    nbytes = volume.nbytes
    del volume, ph
    rows = [("whole volume in memory", run("whole", src, work / "whole.h5", args.downsample, 0))]
    for block in args.blocks:
        out = work / f"blocks-{block}.h5"
        result = run("blocks", src, out, args.downsample, block)
        result["identical"] = same_masks(work / "whole.h5", out)
        rows.append((f"blocks of {block / 2**20:.0f} Mi voxels", result))
    whole = rows[0][1]
    lines = [
        "# Segmentation in blocks vs the whole volume",
        "",
        f"Volume {tuple(args.shape)} float32 ({nbytes / 2**20:.0f} MiB), noisy DIT disc "
        f"phantom, `mask_downsample={args.downsample}`, each variant in its own process "
        "(`benchmarks/bench_segment_stream.py`). Memory: the process's peak resident set "
        "(`VmHWM`, reset after the imports) minus its resident set after the imports.",
        "",
        "| variant | time s | peak MiB (above imports) | vs whole | masks identical to whole | porosity |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        used = (r["peak"] - r["base"]) / 2**20
        ratio = used / ((whole["peak"] - whole["base"]) / 2**20)
        same = "-" if "identical" not in r else ("yes" if r["identical"] else "NO")
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {used:.0f} | {ratio:.2f}x | {same} | "
            f"{r['porosity']:.5f} |"
        )
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load "
        f"average {os.getloadavg()[0]:.1f} at the end).",
    ]
    text = "\n".join(lines) + "\n"
    out_dir = ROOT / "benchmarks" / "results"
    (out_dir / "segment_stream.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
