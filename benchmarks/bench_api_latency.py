"""p95 latency of the dataset list and result figure endpoints under 20 concurrent clients.

Starts gunicorn (``config.wsgi``) on loopback against a fresh database filled with a project of
200 datasets and a Compton result whose Li-map figure is a full 80 x 80 heatmap, then drives
it with N concurrent keep-alive clients (aiohttp). Side by side, the same clients hit a
minimal WSGI app under the same gunicorn settings: the floor of HTTP on this machine, so the
ratio says what Django, DRF and the database add. Goal: p95 < 100 ms for both endpoints.

With ``--redis-url`` the Django server runs a second time with the Redis cache that production
configures, which turns on the dataset list's page cache (``catalogue.api.cache``); the run
without it uses the per-process LocMem cache, where the page cache is off (every request takes
the lean uncached path). The Redis database given is flushed first.

    .venv/bin/python benchmarks/bench_api_latency.py [--quick] [--clients 20]
        [--database-url postgres://postgres@127.0.0.1:5432/correli_bench]
        [--redis-url redis://127.0.0.1:6379/15]

Writes ``benchmarks/results/api_latency.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host_platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "api_latency.md"
FLOOR_APP = """
def app(environ, start_response):
    body = b'{"ok": true}'
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def django_env(database_url: str, var_dir: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "CORRELI_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
        # persistent connections, as production.py configures them
        "CONN_MAX_AGE": "60",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
    }


SEED = r"""
import json, sys
import numpy as np
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from catalogue.models import Dataset
from jobs import figures
from jobs.models import AnalysisJob, Result
from projects.models import Membership, Project

user = get_user_model().objects.create_user("bench", password="bench-pw-123")
token = Token.objects.create(user=user).key
project = Project.objects.create(name="Bench")
Membership.objects.create(project=project, user=user, role="owner")
Dataset.objects.bulk_create([
    Dataset(project=project, name=f"region{i % 3 + 1}-{i}.h5", kind="xcs_spectra",
            status="ready", size=10_000_000 + i, sha256=f"{i:064x}", region=i % 3 + 1)
    for i in range(200)
])
rng = np.random.default_rng(0)
li = 0.6 + 0.1 * rng.random((80, 80))
li[rng.random((80, 80)) < 0.05] = np.nan
figs = {"li_map": figures._map_figure(li, title="Li stoichiometry map", colorbar="1 - x")}
job = AnalysisJob.objects.create(project=project, kind="compton", status="succeeded",
                                 progress=1.0, job_key="0" * 64)
result = Result.objects.create(project=project, job=job, kind="compton", name="bench",
                               summary={"li_total": 0.65}, figures=figs)
print(json.dumps({"token": token, "result": result.pk,
                  "figure_bytes": len(json.dumps(figs["li_map"]))}))
"""


def start_gunicorn(app: str, port: int, env: dict, workers: int, threads: int, cwd: Path):
    command = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--keep-alive", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=cwd, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gunicorn {app} did not start")


def worker_peak_rss_mb(master_pid: int) -> float:
    """Sum of VmHWM (peak resident memory) of the gunicorn master and its workers."""
    total = 0
    pids = [master_pid]
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        pids += [int(p) for p in children]
    except OSError:
        pass
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def drive(url: str, headers: dict, *, clients: int, requests_per_client: int):
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client():
            nonlocal errors
            for _ in range(requests_per_client):
                t0 = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        # warm up every connection and per-worker caches, then measure
        await asyncio.gather(*(client_once(session, url) for _ in range(clients * 2)))
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


async def client_once(session, url):
    async with session.get(url) as response:
        await response.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(name, url, headers, *, clients, per_client) -> dict:
    latencies, errors, wall = asyncio.run(
        drive(url, headers, clients=clients, requests_per_client=per_client)
    )
    return {
        "endpoint": name,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * percentile(latencies, 95),
        "p99_ms": 1000 * percentile(latencies, 99),
        "throughput_rps": len(latencies) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)  # deploy/gunicorn.conf.py
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--database-url", default="", help="default: a fresh SQLite file in a temp dir"
    )
    parser.add_argument(
        "--redis-url", default="", help="also run with this Redis cache (it is flushed)"
    )
    args = parser.parse_args()
    per_client = 15 if args.quick else 50

    var_dir = Path(tempfile.mkdtemp(prefix="correli-bench-api-"))
    database_url = args.database_url or f"sqlite:///{var_dir / 'bench.sqlite3'}"
    env = django_env(database_url, var_dir)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    import json

    seeded = json.loads(
        subprocess.run(
            [sys.executable, "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True,
            text=True,
        ).stdout.strip().splitlines()[-1]
    )  # fmt: skip
    headers = {"Authorization": f"Token {seeded['token']}", "Accept": "application/json"}

    rows, memory = [], {}
    floor_dir = var_dir / "floor"
    floor_dir.mkdir()
    (floor_dir / "floor_app.py").write_text(FLOOR_APP)
    servers = [
        ("floor (minimal WSGI app)", "floor_app:app", floor_dir, {**os.environ}),
        ("django", "config.wsgi:application", ROOT / "platform", env),
    ]
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        servers.append(
            (
                "django + Redis page cache",
                "config.wsgi:application",
                ROOT / "platform",
                {**env, "REDIS_URL": args.redis_url},
            )
        )
    for label, app, cwd, server_env in servers:
        port = free_port()
        proc = start_gunicorn(app, port, server_env, args.workers, args.threads, cwd)
        try:
            base = f"http://127.0.0.1:{port}"
            if label.startswith("floor"):
                targets = [("floor: GET /", f"{base}/")]
            else:
                tag = " [Redis page cache]" if "Redis" in label else ""
                targets = [
                    (f"GET /api/v1/datasets/ (50 of 200){tag}", f"{base}/api/v1/datasets/"),
                    (
                        f"GET /api/v1/results/{{id}}/figure/ ({seeded['figure_bytes'] // 1024} KiB)"
                        f"{tag}",
                        f"{base}/api/v1/results/{seeded['result']}/figure/",
                    ),
                ]
            for name, url in targets:
                rows.append(
                    measure(name, url, headers, clients=args.clients, per_client=per_client)
                )
                print(rows[-1], flush=True)
            memory[label] = worker_peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    shutil.rmtree(var_dir, ignore_errors=True)

    floor_p95 = rows[0]["p95_ms"]
    lines = [
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | req/s | p95 / floor | goal p95 < 100 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        goal = (
            "-"
            if row["endpoint"].startswith("floor")
            else ("met" if row["p95_ms"] < 100 else "NOT met")
        )
        lines.append(
            f"| {row['endpoint']} | {row['requests']} ({row['errors']} errors) | "
            f"{row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['throughput_rps']:.0f} | {row['p95_ms'] / floor_p95:.1f}x | {goal} |"
        )
    db = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    lines.append("")
    lines.append(
        f"{args.clients} concurrent keep-alive clients (aiohttp) on loopback, gunicorn gthread "
        f"{args.workers} workers x {args.threads} threads, {db}, DEBUG off; peak RSS of the "
        f"gunicorn processes: Django {memory.get('django', 0):.0f} MB, floor "
        f"{memory.get('floor (minimal WSGI app)', 0):.0f} MB. Machine: {os.cpu_count()} CPUs "
        f"({host_platform.machine()}, shared), Python {host_platform.python_version()}"
        + (", --quick" if args.quick else "")
        + "."
    )
    if args.redis_url:
        lines.append("")
        lines.append(
            "Untagged rows: LocMem cache, so the dataset list's page cache is off and every "
            "request runs the lean list path (3 queries). [Redis page cache] rows: the same "
            "server with REDIS_URL set as in production; the measured list requests are cache "
            "hits on one page (auth + membership queries, one Redis round trip)."
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
