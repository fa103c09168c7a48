"""Upload throughput through the tus endpoint vs a plain local file copy, on loopback.

Starts gunicorn (``config.wsgi``, sync workers, ``--worker-tmp-dir /dev/shm``) against a fresh
SQLite database, writes a file of random bytes, then in the same run:

* copies it with ``shutil.copyfile`` (the reference: what the disk does with no HTTP at all);
* PATCHes it to a discard-only WSGI app (the HTTP floor of this client and server);
* uploads it with the ``tuspy`` client in 64 MiB PATCH requests (as the browser widget does),
  the server streaming each body to disk with a running sha256, then moving the file into
  the Dataset storage and sniffing its format. The headline ratio is this one;
* uploads it with a plain tus client (``http.client``, the body sent with ``socket.sendfile``
  from the file), to show how much of the time is tuspy's own (it reads every chunk into a
  fresh 64 MiB bytes object);
* with ``--compare-rev REV``: the tuspy upload again against a second gunicorn running
  ``platform/uploads`` as it was at git revision REV (``git archive``, read-only), "before".

Reports MiB/s, ratios to the copy (goal >= 0.5), the peak RSS of the gunicorn workers (the
file must never be held in memory) and checks that every Dataset's sha256 is right.

    .venv/bin/python benchmarks/bench_upload.py [--quick] [--size-mb 2048] [--chunk-mb 64]
        [--compare-rev HEAD]

Writes ``benchmarks/results/upload.md``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
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
    # The sync worker's heartbeat file on tmpfs, as gunicorn's docs advise for production.
    tmp_dir = ["--worker-tmp-dir", "/dev/shm"] if Path("/dev/shm").is_dir() else []
    process = subprocess.Popen(
        [gunicorn, app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        + ["--timeout", "900", "--log-level", "warning", *tmp_dir],
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


def plain_tus_upload(port: int, token: str, project_id: str, path: Path, chunk: int) -> str:
    """A minimal tus client: POST, then PATCHes whose bodies go out with socket.sendfile."""
    size = path.stat().st_size
    auth = {"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    metadata = f"filename {base64.b64encode(path.name.encode()).decode()},project " + (
        base64.b64encode(project_id.encode()).decode()
    )

    def request(method, url, headers, body_range=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
        connection.putrequest(method, url)
        for key, value in {**auth, **headers}.items():
            connection.putheader(key, value)
        connection.endheaders()
        if body_range is not None:
            connection.sock.sendfile(fh, *body_range)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    created = request(
        "POST", "/api/v1/uploads/", {"Upload-Length": str(size), "Upload-Metadata": metadata}
    )
    assert created.status == 201, created.status
    url = "/" + created.headers["Location"].split("/", 3)[3]
    offset = 0
    with open(path, "rb") as fh:
        while offset < size:
            n = min(chunk, size - offset)
            headers = {
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(n),
            }
            response = request("PATCH", url, headers, (offset, n))
            if response.status != 204:
                raise SystemExit(f"plain tus PATCH answered {response.status}")
            offset = int(response.headers["Upload-Offset"])
    return f"http://127.0.0.1:{port}{url}"


def overlay_uploads_app(rev: str, work: Path) -> Path:
    """A folder holding ``uploads/`` as at git revision ``rev`` (to go first on PYTHONPATH)."""
    overlay = work / f"uploads-{rev}"
    overlay.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "platform/uploads"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(overlay)], input=archive, check=True)
    return overlay / "platform"


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
    parser.add_argument(
        "--compare-rev",
        default=None,
        help="also time tuspy against platform/uploads as at this git revision ('before')",
    )
    args = parser.parse_args()
    size_mb = args.size_mb or (256 if args.quick else 2048)
    size = size_mb * MB

    from tusclient import client as tus_client

    work = Path(tempfile.mkdtemp(prefix="correli-bench-upload-"))
    var_dir = work / "var"
    var_dir.mkdir()
    env = server_env(var_dir)
    python = sys.executable
    server = floor = before = None
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
        servers = {"after": (server, port)}
        if args.compare_rev:
            overlay = overlay_uploads_app(args.compare_rev, work)
            before_env = {**env, "PYTHONPATH": os.pathsep.join([str(overlay), env["PYTHONPATH"]])}
            before_port = free_port()
            before = start_gunicorn(
                "config.wsgi:application", before_port, args.workers, ROOT, before_env
            )
            servers["before"] = (before, before_port)
        auth = {"Authorization": f"Token {token}"}
        clients = {
            name: tus_client.TusClient(f"http://127.0.0.1:{p}/api/v1/uploads/", headers=auth)
            for name, (_, p) in servers.items()
        }
        # warm-up: let every worker finish importing Django before the clock starts
        warm = work / "warm.csv"
        warm.write_text("a,b\n1,2\n")
        for client in clients.values():
            for _ in range(2 * args.workers):
                client.uploader(
                    str(warm), metadata={"filename": warm.name, "project": project_id}
                ).upload()
        import requests

        def check_and_clean(url: str) -> None:
            state = requests.get(url, headers=auth).json()
            if state["dataset_sha256"] != expected:
                raise SystemExit(f"sha256 mismatch: {state['dataset_sha256']} != {expected}")
            for stored in (var_dir / "media" / "datasets").rglob("*.bin"):
                stored.unlink()  # keep the disk footprint at one copy

        def tuspy_upload(name: str) -> str:
            uploader = clients[name].uploader(
                str(source),
                chunk_size=args.chunk_mb * MB,
                metadata={"filename": source.name, "project": project_id},
            )
            uploader.upload()
            return uploader.url

        # Interleave the reference copy (on the same filesystem, fsynced as the server syncs
        # what it receives), the floor and the uploads; best of --repeats for each, as the
        # machine is shared and single runs are noisy.
        times: dict[str, list[float]] = {}

        def timed(key: str, action) -> None:
            t0 = time.perf_counter()
            result = action()
            times.setdefault(key, []).append(time.perf_counter() - t0)
            if isinstance(result, str):
                check_and_clean(result)

        chunk = args.chunk_mb * MB
        for attempt in range(args.repeats):
            print(f"round {attempt + 1}/{args.repeats} ...", file=sys.stderr)

            def copy(target: Path = work / "copy.bin") -> None:
                shutil.copyfile(source, target)
                with open(target, "rb+") as fh:
                    os.fsync(fh.fileno())

            timed("copy", copy)
            (work / "copy.bin").unlink()
            timed("floor", lambda: floor_upload(source, floor_port, chunk))
            timed("tuspy", lambda: tuspy_upload("after"))
            timed("plain", lambda: plain_tus_upload(port, token, project_id, source, chunk))
            if "before" in servers:
                timed("before", lambda: tuspy_upload("before"))
        rss = {name: peak_rss_mb(worker_pids(proc.pid)) for name, (proc, _) in servers.items()}
        best = {key: min(values) for key, values in times.items()}
    finally:
        for process in (server, floor, before):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    def mibs(key: str) -> float:
        return size / MB / best[key]

    copy_mbs = mibs("copy")
    ratio = mibs("tuspy") / copy_mbs
    server_desc = f"gunicorn ({args.workers} sync workers), {args.chunk_mb} MiB PATCHes"
    rows = [
        ("plain local copy (shutil.copyfile + fsync)", "copy", "-"),
        ("HTTP floor: `requests`, same PATCH size, to a discard-only WSGI app", "floor", "-"),
        (f"**tus upload, tuspy -> {server_desc}, sha256 + sniff**", "tuspy", rss["after"]),
        (
            f"tus upload, plain client (http.client + sendfile) -> {server_desc}",
            "plain",
            rss["after"],
        ),
    ]
    if "before" in best:
        rows.append(
            (
                f"before: tuspy -> uploads app at `{args.compare_rev}` (gunicorn wsgi.input, "
                "sha256 in a thread)",
                "before",
                rss["before"],
            )
        )
    lines = [
        "| path | time (s) | throughput (MiB/s) | ratio to copy | peak worker RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {label} | {best[key]:.2f} | {mibs(key):.0f} | {mibs(key) / copy_mbs:.2f} | "
            + (f"{peak:.0f} |" if peak != "-" else "- |")
            for label, key, peak in rows
        ],
        "",
        f"File: {size_mb} MiB of random bytes; best of {args.repeats} interleaved runs each; "
        f"every upload's sha256 verified. The goal (ratio >= 0.5) refers to the tuspy row: "
        f"{ratio:.2f}, {'met' if ratio >= 0.5 else 'NOT met'}. Machine: "
        f"{host_platform.machine()}, {os.cpu_count()} CPU cores shared with other work (client "
        f"and server on the same cores), Python {host_platform.python_version()}, loopback, "
        "SQLite.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
