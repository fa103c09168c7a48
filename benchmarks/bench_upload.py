"""Upload throughput through the tus endpoint vs a plain local file copy, on loopback.

Starts gunicorn (``config.wsgi``, sync workers) against a fresh SQLite database, writes a file
of random bytes, then in the same run:

* copies it with ``shutil.copyfile`` (the floor: what the disk does with no HTTP at all);
* uploads it with the ``tuspy`` client in 64 MiB PATCH requests (as the browser widget does),
  the server streaming each body to disk with a running sha256, then moving the file into
  the Dataset storage and sniffing its format.

Reports MB/s of both, the ratio (goal >= 0.5), the peak RSS of the gunicorn workers (the
file must never be held in memory) and checks that the Dataset's sha256 is right.

    .venv/bin/python benchmarks/bench_upload.py [--quick] [--size-mb 2048] [--chunk-mb 64]

Writes ``benchmarks/results/upload.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform as host_platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "upload.md"
MB = 1024 * 1024

# The HTTP floor: the same gunicorn, the same client and PATCH sizes, an app that only reads
# and discards the body. upload / floor says what the tus server itself costs.
FLOOR_APP = """
def app(environ, start_response):
    stream, left = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)
    while left > 0:
        chunk = stream.read(min(4 << 20, left))
        if not chunk:
            break
        left -= len(chunk)
    start_response("204 No Content", [])
    return [b""]
"""

SEED = r"""
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from projects.models import Membership, Project

user = get_user_model().objects.create_user("bench", password="bench-pw-123")
project = Project.objects.create(name="Upload bench")
Membership.objects.create(project=project, user=user, role="analyst")
print(project.pk, Token.objects.create(user=user).key)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(var_dir: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
        "CORRELI_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "CORRELI_UPLOAD_TMP": str(var_dir / "media" / "uploads"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
    }


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    rng_block = os.urandom(16 * MB)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            # vary each block cheaply so the content is not one repeated pattern
            block = hashlib.sha256(written.to_bytes(8, "little")).digest() + rng_block
            block = block[: min(len(block), size - written)]
            fh.write(block)
            digest.update(block)
            written += len(block)
    return digest.hexdigest()


def peak_rss_mb(pids: list[int]) -> float:
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return max(peaks, default=float("nan"))


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def start_gunicorn(app: str, port: int, workers: int, cwd: Path, env: dict) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    process = subprocess.Popen(
        [gunicorn, app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        + ["--timeout", "900", "--log-level", "warning"],
        cwd=cwd,
        env=env,
    )
    wait_for_port(port, process)
    return process


def floor_upload(path: Path, port: int, chunk: int) -> float:
    """Seconds to PATCH ``path`` in ``chunk``-byte requests to the discard-only app."""
    import requests

    session = requests.Session()
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            session.patch(f"http://127.0.0.1:{port}/", data=data).raise_for_status()
    return time.perf_counter() - t0


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MB instead of 2048 MB")
    parser.add_argument("--size-mb", type=int, default=None)
    parser.add_argument("--chunk-mb", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    size_mb = args.size_mb or (256 if args.quick else 2048)
    size = size_mb * MB

    from tusclient import client as tus_client

    work = Path(tempfile.mkdtemp(prefix="correli-bench-upload-"))
    var_dir = work / "var"
    var_dir.mkdir()
    env = server_env(var_dir)
    python = sys.executable
    server = floor = None
    try:
        subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        seeded = subprocess.run(
            [python, "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        project_id, token = seeded.stdout.split()[-2:]

        source = work / "beamtime.bin"
        print(f"writing {size_mb} MiB of test data ...", file=sys.stderr)
        expected = write_random_file(source, size)

        port = free_port()
        server = start_gunicorn("config.wsgi:application", port, args.workers, ROOT, env)
        (work / "floor_app.py").write_text(FLOOR_APP)
        floor_port = free_port()
        floor = start_gunicorn("floor_app:app", floor_port, args.workers, work, dict(os.environ))
        endpoint = f"http://127.0.0.1:{port}/api/v1/uploads/"
        client = tus_client.TusClient(endpoint, headers={"Authorization": f"Token {token}"})
        uploader = client.uploader(
            str(source),
            chunk_size=args.chunk_mb * MB,
            metadata={"filename": source.name, "project": project_id},
        )
        # warm-up: let every worker finish importing Django before the clock starts
        warm = work / "warm.csv"
        warm.write_text("a,b\n1,2\n")
        for _ in range(2 * args.workers):
            client.uploader(
                str(warm), metadata={"filename": warm.name, "project": project_id}
            ).upload()
        # Interleave the floor (a plain local copy on the same filesystem, fsynced as the
        # server fsyncs what it receives) with the uploads; best of --repeats for each, as
        # the machine is shared and single runs are noisy.
        copy_times, floor_times, upload_times, sha_ok = [], [], [], True
        import requests

        for attempt in range(args.repeats):
            target = work / "copy.bin"
            t0 = time.perf_counter()
            shutil.copyfile(source, target)
            with open(target, "rb+") as fh:
                os.fsync(fh.fileno())
            copy_times.append(time.perf_counter() - t0)
            target.unlink()
            floor_times.append(floor_upload(source, floor_port, args.chunk_mb * MB))

            print(f"uploading with tuspy ({attempt + 1}/{args.repeats}) ...", file=sys.stderr)
            uploader = client.uploader(
                str(source),
                chunk_size=args.chunk_mb * MB,
                metadata={"filename": source.name, "project": project_id},
            )
            t0 = time.perf_counter()
            uploader.upload()
            upload_times.append(time.perf_counter() - t0)
            state = requests.get(uploader.url, headers={"Authorization": f"Token {token}"}).json()
            sha_ok = sha_ok and state["dataset_sha256"] == expected
            if not sha_ok:
                raise SystemExit(f"sha256 mismatch: {state['dataset_sha256']} != {expected}")
            for stored in (var_dir / "media" / "datasets").rglob("*.bin"):
                stored.unlink()  # keep the disk footprint at one copy
        rss = peak_rss_mb(worker_pids(server.pid))
        copy_s, upload_s, floor_s = min(copy_times), min(upload_times), min(floor_times)
    finally:
        for process in (server, floor):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    copy_mbs = size / MB / copy_s
    upload_mbs = size / MB / upload_s
    ratio = upload_mbs / copy_mbs
    floor_mbs = size / MB / floor_s
    rows = [
        ("plain local copy (shutil.copyfile + fsync)", copy_s, copy_mbs, "1.00", "-"),
        (
            f"HTTP floor: same client and PATCH size to a discard-only WSGI app (upload/floor "
            f"= {upload_mbs / floor_mbs:.2f})",
            floor_s,
            floor_mbs,
            f"{floor_mbs / copy_mbs:.2f}",
            "-",
        ),
        (
            f"tus upload, tuspy -> gunicorn ({args.workers} sync workers), "
            f"{args.chunk_mb} MiB PATCHes, sha256 + sniff",
            upload_s,
            upload_mbs,
            f"{ratio:.2f}",
            f"{rss:.0f}",
        ),
    ]
    lines = [
        "| path | time (s) | throughput (MiB/s) | ratio to copy | peak worker RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
        *[f"| {r[0]} | {r[1]:.2f} | {r[2]:.0f} | {r[3]} | {r[4]} |" for r in rows],
        "",
        f"File: {size_mb} MiB of random bytes; best of {args.repeats} runs each; "
        f"sha256 verified: {sha_ok}. Goal: ratio >= 0.5 "
        f"({'met' if ratio >= 0.5 else 'NOT met'}). Machine: {host_platform.machine()}, "
        f"{os.cpu_count()} CPU cores shared with other work, Python "
        f"{host_platform.python_version()}, loopback, SQLite.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
