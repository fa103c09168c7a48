"""Storing a finished upload: the object store (streamed multipart) vs the local filesystem.

Starts moto's S3 server (``python -m moto.server``, a separate process on loopback), writes a
file of random bytes, and measures in the same run, each operation in a fresh Python process
(so that its peak RSS is its own):

* ``fs-rename``: what the default (``CORRELI_STORAGE=local``) does when an upload completes:
  one sha256 pass over the file (done during the PATCHes in the real flow) and a rename into
  ``MEDIA_ROOT``;
* ``fs-copy``: sha256 and a copy (the upload area on another filesystem than the media root);
* ``s3-upload``: :func:`projects.store` streaming the file to the store with a multipart
  upload (16 MiB parts, 4 in flight), the sha256 computed in the same pass;
* ``s3-download``: a worker materialising the object into its input cache (one streaming
  GET hashed as it arrives, the sha256 checked, then the atomic rename).

Reports seconds, MiB/s, the ratio to ``fs-copy``, the CPU seconds of the process doing it
(the rest of the wall time is the store's) and its peak RSS above what it had before the
operation (the file must never be held in memory).

    .venv/bin/python benchmarks/bench_store.py [--size-mb 1024] [--quick]

Writes ``benchmarks/results/store.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform as host_platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "store.md"
MB = 1024 * 1024
BUCKET = "bench"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MB):
            digest.update(block)
    return digest.hexdigest()


def child(op: str, source: Path, work: Path, endpoint: str) -> dict:
    """Run one operation in this (fresh) process; return timings and memory."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CORRELI_STORAGE": "s3",
            "CORRELI_S3_ENDPOINT_URL": endpoint,
            "CORRELI_S3_BUCKET": BUCKET,
            "CORRELI_S3_ACCESS_KEY_ID": "bench",
            "CORRELI_S3_SECRET_ACCESS_KEY": "bench",
            "CORRELI_CACHE_DIR": str(work / "cache"),
            "CORRELI_SCRATCH_DIR": str(work / "scratch"),
            "MEDIA_ROOT": str(work / "media"),
        }
    )
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
    import django

    django.setup()
    from projects import store

    store._bucket_and_client()  # client and connection pool made before the baseline
    baseline = _rss_mib()
    cpu0 = time.process_time()
    started = time.perf_counter()
    if op == "fs-rename":
        digest = _sha256(source)
        target = work / "media" / "datasets" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        os.replace(target, source)  # put it back for the next operation (not timed twice)
    elif op == "fs-copy":
        digest = _sha256(source)
        target = work / "media" / "copy.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.fsync(os.open(target, os.O_RDONLY))
        target.unlink()
    elif op == "s3-upload":
        digest, _ = store._upload_file(source, "datasets/1/bench.bin")
    elif op == "s3-download":
        target = store.InputCache.default().path_for("f" * 64, ".bin")
        expect = (work / "sha256").read_text().strip()
        store.InputCache.default().download("datasets/1/bench.bin", target, expect_sha256=expect)
        digest = expect
        target.unlink()
    else:
        raise SystemExit(f"unknown operation {op}")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    return {
        "cpu_seconds": cpu,
        "op": op,
        "seconds": seconds,
        "sha256": digest,
        "baseline_mib": baseline,
        "peak_mib": _rss_mib(),
    }


def run_child(op: str, source: Path, work: Path, endpoint: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", op, str(source), str(work), endpoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{op} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


LABELS = {
    "fs-rename": "local default: sha256 + rename into MEDIA_ROOT",
    "fs-copy": "local, other filesystem: sha256 + copy + fsync",
    "s3-upload": "**object store: streamed multipart upload (16 MiB parts, 4 in flight) + sha256**",
    "s3-download": "object store -> worker cache: streaming GET + sha256, rename",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="64 MiB, no results file")
    parser.add_argument("--child", nargs=4, metavar=("OP", "SOURCE", "WORK", "ENDPOINT"))
    args = parser.parse_args()
    if args.child:
        op, source, work, endpoint = args.child
        print(json.dumps(child(op, Path(source), Path(work), endpoint)))
        return
    size_mb = 64 if args.quick else args.size_mb
    sys.path[:0] = [str(ROOT)]
    from tests.s3_store import MotoServer

    with tempfile.TemporaryDirectory(prefix="correli-bench-store-") as tmp:
        work = Path(tmp)
        server = MotoServer(work / "moto.log").start()
        try:
            server.client().create_bucket(Bucket=BUCKET)
            source = work / "upload.part"
            with open(source, "wb") as fh:
                for _ in range(size_mb):
                    fh.write(os.urandom(MB))
            expect = _sha256(source)
            (work / "sha256").write_text(expect)
            rows = []
            for op in ("fs-rename", "fs-copy", "s3-upload", "s3-download"):
                row = run_child(op, source, work, server.endpoint)
                assert row["sha256"] == expect, (op, row["sha256"], expect)
                rows.append(row)
                print(
                    f"{op:12s} {row['seconds']:7.2f} s {size_mb / row['seconds']:8.0f} MiB/s "
                    f"cpu {row['cpu_seconds']:6.2f} s "
                    f"peak RSS +{row['peak_mib'] - row['baseline_mib']:.0f} MiB "
                    f"(of {row['peak_mib']:.0f})",
                    flush=True,
                )
            stored = server.client().head_object(Bucket=BUCKET, Key="datasets/1/bench.bin")
            assert stored["ContentLength"] == size_mb * MB
            parts = stored["ETag"].strip('"').rsplit("-", 1)[-1]
        finally:
            server.stop()
    if args.quick:
        return
    copy = next(r for r in rows if r["op"] == "fs-copy")["seconds"]
    lines = [
        "| path | time (s) | throughput (MiB/s) | ratio to copy | client CPU (s) "
        "| peak RSS above baseline (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {LABELS[row['op']]} | {row['seconds']:.2f} | {size_mb / row['seconds']:.0f} | "
            f"{copy / row['seconds']:.2f} | {row['cpu_seconds']:.1f} | "
            f"{row['peak_mib'] - row['baseline_mib']:.0f} |"
        )
    lines += [
        "",
        f"File: {size_mb} MiB of random bytes; the object's size and every sha256 verified; the "
        f"store saw a multipart upload of {parts} parts. Each operation ran in a fresh process; "
        "peak RSS is ru_maxrss after the operation minus before it (Django, boto3 and the "
        "client already loaded); client CPU is the process time of the process doing it. The "
        "store is moto's S3 server (Python, on the same 2 shared cores as the client, "
        "loopback): where the client's CPU is well below the wall time, the store's own speed "
        "bounds the row, and a real MinIO or S3 is faster. Machine: "
        f"{host_platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{host_platform.python_version()}.",
        "",
        "Regenerate: `.venv/bin/python benchmarks/bench_store.py --size-mb 1024`.",
        "",
    ]
    RESULTS.write_text("# Object store: storing a finished upload\n\n" + "\n".join(lines))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
