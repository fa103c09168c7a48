"""Benchmark the ``events`` stage end to end: read HDF5, cluster, histogram, write spectra.

Side by side in the same run: the numba kernels (``run_events``) on a synthetic HEXITEC event
list and raw-frame file, and a straightforward baseline that labels each frame with
``scipy.ndimage.label``. Each timed run is a separate process so its peak memory (max RSS) is
its own. Writes ``benchmarks/results/events.md``.

    .venv/bin/python benchmarks/bench_events.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis_engine.io.hexitec import (  # noqa: E402
    Calibration,
    HexitecEventsWriter,
    HexitecFramesWriter,
)
from analysis_engine.synthetic.hexitec import (  # noqa: E402
    beamline_spectrum,
    generate_events,
    generate_frames,
    random_calibration,
)

HITS_PER_FRAME = 40  # about 300 M events in 6.5 M frames (12 min at 9 kHz)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
mode, path, out, warm = sys.argv[1:5]
if mode == "fast":
    from analysis_engine.events.commands import run_events
    run_events(warm, out + ".warm.h5")  # load the cached numba kernels
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_events(path, out)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = summary["events_in"] if summary["input_kind"] == "events" else summary["frames"]
else:
    import numpy as np
    from analysis_engine.io.hexitec import HexitecEventReader
    from analysis_engine.events.reference import histogram_events_reference
    limit = int(sys.argv[5])
    with HexitecEventReader(path) as r:
        block = next(r.blocks(limit))
    t0, c0 = time.perf_counter(), time.process_time()
    histogram_events_reference(block.frame, block.row, block.col, block.values)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(block.frame)
# VmHWM is this process's own peak RSS (ru_maxrss would include the parent's, inherited)
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "items": n, "peak_mib": peak}}))
"""


def _child(*args: str) -> dict:
    code = CHILD.format(root=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def make_event_file(path: Path, total: int, seed: int = 0) -> None:
    e = np.arange(0.025, 160.0, 0.05)
    base = 4_000_000 if total >= 4_000_000 else total
    n_frames = base // HITS_PER_FRAME
    syn = generate_events(
        e, beamline_spectrum(e), counts=base / 6400 / 1.12, n_frames=n_frames,
        sharing_fraction=0.1, triple_fraction=0.02, seed=seed,
    )  # fmt: skip
    frames_written = 0
    with HexitecEventsWriter(path) as w:
        while True:
            for i in range(0, len(syn.frame), 1 << 22):
                sl = slice(i, i + (1 << 22))
                w.append(syn.frame[sl] + frames_written, syn.row[sl], syn.col[sl],
                         syn.energy_kev[sl])  # fmt: skip
            frames_written += n_frames
            if frames_written * HITS_PER_FRAME >= total:
                break
        w.n_frames = frames_written


def make_frame_file(path: Path, total_frames: int, seed: int = 0) -> None:
    e = np.arange(0.025, 160.0, 0.05)
    base = min(total_frames, 10_000)
    gain, offset = random_calibration(seed=seed)
    photons_per_frame = HITS_PER_FRAME / 1.12
    syn = generate_frames(
        e, beamline_spectrum(e), counts=photons_per_frame * base / 6400, n_frames=base,
        gain_kev_per_adu=gain, offset_kev=offset, sharing_fraction=0.1, seed=seed,
    )  # fmt: skip
    with HexitecFramesWriter(path, calibration=Calibration(gain, offset), threshold_kev=5.0) as w:
        for _ in range(0, total_frames, base):
            w.append(syn.frames_adu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small scale, for a smoke test")
    parser.add_argument("--keep", help="folder for the generated files (default: temporary)")
    args = parser.parse_args()
    n_events = 8_000_000 if args.quick else 80_000_000
    n_frames = 40_000 if args.quick else 200_000
    n_baseline = 100_000 if args.quick else 400_000
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench_events_"))
    tmp.mkdir(parents=True, exist_ok=True)
    ev, fr = tmp / "events.h5", tmp / "frames.h5"
    warm_ev, warm_fr = tmp / "warm_events.h5", tmp / "warm_frames.h5"
    t0 = time.perf_counter()
    make_event_file(warm_ev, 20_000, seed=1)
    make_frame_file(warm_fr, 200, seed=1)
    if not ev.exists():
        make_event_file(ev, n_events)
    if not fr.exists():
        make_frame_file(fr, n_frames)
    print(f"generated inputs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    fast_ev = _child("fast", str(ev), str(tmp / "out_ev.h5"), str(warm_ev))
    fast_fr = _child("fast", str(fr), str(tmp / "out_fr.h5"), str(warm_fr))
    base = _child("baseline", str(ev), "", "", str(n_baseline))

    ev_rate = fast_ev["items"] / fast_ev["seconds"]
    fr_rate = fast_fr["items"] / fast_fr["seconds"]
    base_rate = base["items"] / base["seconds"]
    size_ev = ev.stat().st_size / 2**20
    size_fr = fr.stat().st_size / 2**20

    def row(name, res, items, rate, ratio):
        per_cpu = res["items"] / res["cpu_seconds"]
        per_cpu = f"{per_cpu / 1e6:.1f} M" if per_cpu > 1e6 else f"{per_cpu / 1e3:.0f} k"
        return (
            f"| {name} | {items} | {res['seconds']:.2f} | {res['cpu_seconds']:.2f} | {rate} | "
            f"{per_cpu} | {res['peak_mib']:.0f} | {ratio} |"
        )

    load = os.getloadavg()[0]
    lines = [
        "| run | input | wall s | CPU s | throughput (wall) | per CPU-second | peak RSS (MiB) "
        "| ratio (wall) |",
        "|---|---|---|---|---|---|---|---|",
        row("event list, numba kernels, end to end (read, cluster, histogram, write)", fast_ev,
            f"{fast_ev['items']:,} events", f"{ev_rate / 1e6:.1f} M events/s",
            f"{ev_rate / base_rate:.0f}x baseline"),
        row("event list, baseline: scipy.ndimage.label per frame (cluster + histogram only)",
            base, f"{base['items']:,} events", f"{base_rate / 1e6:.3f} M events/s", "1x"),
        row("raw frames, numba kernels, end to end", fast_fr, f"{fast_fr['items']:,} frames",
            f"{fr_rate / 1e3:.0f} k frames/s", f"{fr_rate / 9000:.1f}x the 9 kHz frame rate"),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
        f"(1-min load average {load:.1f} at the end of the run), Python "
        f"{platform.python_version()}; {'quick' if args.quick else 'full'} scale: "
        f"{size_ev:.0f} MiB event file ({HITS_PER_FRAME} hits/frame, 10 % 2-pixel and 2 % "
        f"3-pixel sharing), {size_fr:.0f} MiB raw-frame file, warm page cache; output 80 x 80 x "
        "3200 bins (0-160 keV, 0.05 keV) written with gzip. Goals: >= 30 M events/s, >= 100 k "
        "frames/s, >= 20x baseline. CPU s counts every thread of the run; when other jobs "
        "share the cores, wall time exceeds CPU s / 2 and per-CPU-second rates show what the "
        "code does with the CPU it gets.",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / "events.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
