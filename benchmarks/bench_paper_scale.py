"""Paper-scale slab through the engine: generation, reconstruction, segmentation, transport.

Each step runs as its own ``python -m analysis_engine`` process under ``/usr/bin/time -v``, so
the peak resident memory (maximum RSS) and wall time are the operating system's numbers for
exactly that command. Writes benchmarks/results/paper_scale.md.

Steps (issue 19): ``demo-data --size full`` (3600 projections over 360 deg, off-centre axis,
SLICES x COLS detector), ``reconstruct --half-acquisition --backend fourier`` of the whole
slab, the same on a quarter of the slab (the peak memory must not grow with the slab: the
reader streams chunks of ``--chunk-slices`` rows), ``segment`` and ``transport-table`` of the
quarter slab (both hold their whole input volume in memory).

    .venv/bin/python benchmarks/bench_paper_scale.py --workdir /tmp/paper  # 64 x 2048
    .venv/bin/python benchmarks/bench_paper_scale.py --slices 8 --cols 512 --workdir /tmp/p
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], label: str) -> dict:
    """Run ``python -m analysis_engine ARGS`` under /usr/bin/time -v; peak RSS and wall time."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "analysis_engine", *args]
    print(f"[{label}] {' '.join(args)}", flush=True)
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{label} failed:\n{out.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out.stderr)
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    result = {"label": label, "peak_mb": rss_kb / 1024, "seconds": seconds, "summary": summary}
    print(f"[{label}] {seconds:.0f} s, peak RSS {rss_kb / 1024:.0f} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--cols", type=int, default=2048)
    parser.add_argument("--chunk-slices", type=int, default=8)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true", help="keep an existing generated scan")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    scan = work / "data" / "xct" / "paper_scan.nxs"
    rows = []
    if not (args.reuse and scan.exists()):
        rows.append(
            timed(
                [
                    "demo-data",
                    str(work / "data"),
                    "--size",
                    "full",
                    "--slices",
                    str(args.slices),
                    "--detector-cols",
                    str(args.cols),
                ],
                "demo-data --size full",
            )
        )
    quarter = max(args.chunk_slices, args.slices // 4)
    common = ["--half-acquisition", "--backend", "fourier", "--chunk-slices"]
    rows.append(
        timed(
            ["reconstruct", str(scan), "-o", str(work / "rec_all.h5"), *common]
            + [str(args.chunk_slices)],
            f"reconstruct {args.slices} slices",
        )
    )
    rows.append(
        timed(
            ["reconstruct", str(scan), "-o", str(work / "rec_quarter.h5"), *common]
            + [str(args.chunk_slices), "--slices", f"0:{quarter}"],
            f"reconstruct {quarter} slices",
        )
    )
    rows.append(
        timed(
            ["segment", str(work / "rec_quarter.h5"), "-o", str(work / "seg.h5")],
            f"segment {quarter} slices",
        )
    )
    width = rows[-2]["summary"]["shape"][-1]
    half = min(200, width // 4)
    box = [0, quarter, width // 2 - half, width // 2 + half, width // 2 - half, width // 2 + half]
    rows.append(
        timed(
            ["transport-table", str(work / "seg.h5"), "-o", str(work / "table.h5")]
            + ["--box", *map(str, box)],
            f"transport-table box {quarter} x {2 * half} x {2 * half}",
        )
    )
    scan_mb = scan.stat().st_size / 1e6
    lines = [
        f"Scan: {args.slices} slices x 3600 projections (360 deg, off-centre axis) x {args.cols} "
        f"columns, {scan_mb:.0f} MB uint16 NXtomo; stitched slices "
        f"{width} x {width}; chunks of {args.chunk_slices} slices.",
        "",
        "| step | wall time | peak RSS | output |",
        "|---|---|---|---|",
    ]
    for row in rows:
        summary = row["summary"]
        shown = {
            k: summary[k]
            for k in ("shape", "center_of_rotation", "porosity", "backend", "bytes")
            if k in summary
        }
        lines.append(
            f"| {row['label']} | {row['seconds']:.0f} s | {row['peak_mb']:.0f} MB | "
            f"{json.dumps(shown)} |"
        )
    truth = json.loads((work / "data" / "ground_truth.json").read_text())
    lines += [
        "",
        f"Ground truth: axis at {truth['center_of_rotation']} px, porosity "
        f"{truth['porosity']:.4f} (whole slab).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), no GPU.",
    ]
    text = "\n".join(lines) + "\n"
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "paper_scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
