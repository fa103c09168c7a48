"""Scale-out of the chunked reconstruction: throughput against the number of worker processes.

Issue 19, item 4. One throwaway CorreLi (``platform_harness.py``: gunicorn, SQLite, the
embedded broker, one ``MEDIA_ROOT`` as the data store) and, per run, N separate Celery worker
processes (prefork, concurrency 1), each with its own scratch directory
(``CORRELI_SCRATCH_DIR`` and ``TMPDIR``) and one engine thread (``CORRELI_ENGINE_THREADS=1``,
``NUMBA_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``): the workers share nothing but the store, the
database and the broker. A paper-geometry scan (3600 projections over 360 deg, off-centre
axis) is uploaded once through tus; each run submits the same ``reconstruct`` job (Fourier
backend, half acquisition) over SLICES slices in chunks of CHUNK, which fans out over the
workers, and times it from submission to the merged result. A reference run of one worker
with the default threads (all cores) is added.

    .venv/bin/python benchmarks/bench_scaling.py --scan /tmp/paper/data/xct/paper_scan.nxs

Writes benchmarks/results/scaling.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_harness import ROOT, Installation  # noqa: E402

ONE_THREAD = {
    "CORRELI_ENGINE_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/correli-bench-scaling"))
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--chunk-slices", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--reanalyse",
        action="store_true",
        help="only rebuild the report from scaling.json and the workers' logs in --workdir",
    )
    args = parser.parse_args()
    if args.reanalyse:
        runs = json.loads((args.results / "scaling.json").read_text())
        write_report(args, runs)
        return

    site = Installation(args.workdir / "var")
    runs: list[dict] = []
    try:
        site.start_web(workers=1)
        dataset = site.upload(args.scan, "xct_projections")
        plan = [(n, ONE_THREAD, "1 thread each") for n in args.workers]
        plan.append((1, {}, "default threads (all cores)"))
        for n, env, threads in plan:
            workers = [
                site.start_worker(f"s{len(runs)}w{i}", extra_env=env, loglevel="INFO")
                for i in range(n)
            ]
            time.sleep(8)  # every worker connected to the broker before the job is sent
            t0 = time.perf_counter()
            job_id = site.submit(
                "reconstruct",
                parameters={
                    "half_acquisition": True,
                    "backend": "fourier",
                    "chunk_slices": args.chunk_slices,
                    "slices": [0, args.slices],
                },
                inputs=[dataset],
            )
            done = site.wait(job_id)
            seconds = time.perf_counter() - t0
            if done["status"] != "succeeded":
                raise SystemExit(f"reconstruct with {n} workers {done['status']}: {done['error']}")
            hosts = _chunk_hosts(site, n)
            run = {
                "workers": n,
                "threads": threads,
                "seconds": seconds,
                "slices_per_s": args.slices / seconds,
                "workers_that_ran_chunks": hosts,
            }
            print(json.dumps(run), flush=True)
            runs.append(run)
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=60)
            site.processes = [p for p in site.processes if p not in workers]
    finally:
        site.stop()
    write_report(args, runs)


def _chunk_hosts(site: Installation, n: int) -> int:
    """How many of the run's workers logged a chunk (from their log files)."""
    count = 0
    for log in sorted(site.var_dir.glob("worker-*.log"))[-n:]:
        if "run_chunk" in log.read_text(errors="replace"):
            count += 1
    return count


LOG_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+): INFO/[^\]]+\] Task ([\w.]+)\[[^\]]+\] "
    r"succeeded in ([\d.]+)s"
)


def phases(var_dir: Path, run_index: int) -> dict:
    """Seconds of planning (run_job), of the chunk phase (first chunk start to last chunk
    end, over all workers) and of the merge, from the run's worker logs (INFO lines)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for log in var_dir.glob(f"worker-s{run_index}w*.log"):
        for line in log.read_text(errors="replace").splitlines():
            m = LOG_LINE.match(line)
            if not m:
                continue
            end = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            spans.setdefault(m.group(2), []).append((end - float(m.group(3)), end))

    def wall(name: str) -> float:
        got = spans.get(name, [])
        return max(e for _, e in got) - min(b for b, _ in got) if got else float("nan")

    chunk_busy = sum(e - b for b, e in spans.get("jobs.run_chunk", []))
    return {
        "plan_s": wall("jobs.run_job"),
        "chunks_s": wall("jobs.run_chunk"),
        "chunk_cpu_s": chunk_busy,
        "merge_s": wall("jobs.merge_chunks"),
    }


def write_report(args, runs: list[dict]) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(runs):
        r.update(phases(args.workdir / "var", i))
    (args.results / "scaling.json").write_text(json.dumps(runs, indent=2) + "\n")
    base = next(r for r in runs if r["workers"] == 1 and r["threads"] == "1 thread each")
    lines = [
        "# Scale-out of the chunked reconstruction",
        "",
        f"`reconstruct` of {args.slices} slices of a paper-geometry scan ({args.scan.name}: 3600 "
        "projections over 360 deg, off-centre axis, half acquisition, Fourier backend) in "
        f"chunks of {args.chunk_slices} slices, fanned out over N Celery worker processes, "
        "each with its own scratch directory and only the data store (`MEDIA_ROOT`), the "
        "database and the broker in common (`benchmarks/bench_scaling.py`). Time from "
        "submission to the merged result (planning with the axis search, chunks, merge).",
        "",
        "| workers | engine threads | job time (s) | slices/s | speed-up vs 1 worker | "
        "plan / chunks / merge (s) | chunk phase slices/s | chunk speed-up | "
        "workers that ran chunks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        chunk_rate = args.slices / r["chunks_s"]
        lines.append(
            f"| {r['workers']} | {r['threads']} | {r['seconds']:.1f} | {r['slices_per_s']:.3f} | "
            f"{base['seconds'] / r['seconds']:.2f}x | {r['plan_s']:.0f} / {r['chunks_s']:.0f} / "
            f"{r['merge_s']:.0f} | {chunk_rate:.3f} | {base['chunks_s'] / r['chunks_s']:.2f}x | "
            f"{r['workers_that_ran_chunks']} |"
        )
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load "
        f"average {os.getloadavg()[0]:.1f} at the end), no GPU.",
    ]
    text = "\n".join(lines) + "\n"
    (args.results / "scaling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
