"""Live acquisitions, measured end to end: frames written -> map shown in Chromium, and SSE viewers.

Part A: the real stack of ``bin/run`` on this machine: uvicorn (one process), a Celery worker
process (``--concurrency 1``) and the broker (the embedded SQLite one, or Redis DB 4 with the
live pub/sub), a fresh SQLite database. A "beamline script" thread replays the operando twin
(``analysis_engine.synthetic.operando.operando_events``) at the detector's maximum rate: 9000
frames/s and ``--rate`` events/s (4 M nominal), one append-API chunk per ``--chunk-s`` of
detector time, sent when the detector has written its last frame (the chunk's *written* time,
taken from the replay clock, so a sender that falls behind shows up as delay). The worker
clusters, recomputes the maps (``CORRELI_LIVE_MAP_INTERVAL_S=0``: on every step, several
chunks per step when it is behind) and pushes them; Chromium (``/usr/bin/chromium``) shows the
live page logged in, and the page records the wall-clock time each map is on screen
(``window.CorreLiLive.draws``, after Plotly's redraw and the next animation frame).

Delay of chunk k = time of the first map on screen that includes it (``processed_seq >= k``)
- the time its newest frame was written; its oldest frame waited ``--chunk-s`` longer. The
first ``--warmup`` chunks (numba compilation in a fresh worker) are left out.

Part B: N concurrent SSE clients (aiohttp) on ``/api/v1/events/`` of one uvicorn process; a
publisher process sends one event every 0.2 s through ``live.events.publish`` with its send
time; every client must receive every event. N grows until p95 delivery exceeds 2 s, an event
is missing or N reaches the last step.

    NUMBA_NUM_THREADS=2 .venv/bin/python benchmarks/bench_live_e2e.py [--quick]

Each run's numbers are kept in ``benchmarks/results/live_e2e.json`` (keyed by broker and
rate, so several shorter invocations add up) and ``benchmarks/results/live_e2e.md`` is written
from all of them, e.g. ``--rates 1e6,2e6 --brokers redis --skip-b``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform as host_platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "live_e2e.md"
RUNS = ROOT / "benchmarks" / "results" / "live_e2e.json"
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
CHROMIUM = os.environ.get("CORRELI_CHROMIUM", "/usr/bin/chromium")
REDIS_DB4 = "redis://127.0.0.1:6379/4"
FRAME_RATE_HZ = 9000
PASSWORD = "bench-pw-123-live"

SEED = r"""
import json, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from projects.models import Membership, Project
user = get_user_model().objects.create_user("bench", password=PASSWORD)
project = Project.objects.create(name="Bench")
Membership.objects.create(project=project, user=user, role="owner")
print(json.dumps({"token": Token.objects.create(user=user).key, "project": project.pk}))
""".replace("PASSWORD", repr(PASSWORD))

PUBLISH = r"""
import sys, time, django
django.setup()
from live.events import publish
project, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    publish(project, "bench", i, {"t": time.time(), "i": i})
    time.sleep(0.2)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_DB4, socket_connect_timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means: run without Redis
        return False


class Stack:
    """uvicorn + (optionally) a Celery worker on a fresh database in a temporary folder."""

    def __init__(self, tmp: Path, *, use_redis: bool, worker: bool, map_interval_s: float = 0.0):
        self.var = tmp
        queue = f"bench-live-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "false",
            "CORRELI_VAR_DIR": str(tmp),
            "MEDIA_ROOT": str(tmp / "media"),
            "STATIC_ROOT": str(tmp / "static"),
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "CORRELI_LIVE_MAP_INTERVAL_S": str(map_interval_s),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        }
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "CORRELI_LIVE_REDIS_URL", "DATABASE_URL"):
            self.env.pop(name, None)
        if use_redis:
            import redis

            redis.Redis.from_url(REDIS_DB4).flushdb()  # this benchmark's own database
            self.env.update(REDIS_URL=REDIS_DB4, CELERY_BROKER_URL=REDIS_DB4)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=self.env,
                       check=True)  # fmt: skip
        self.seed = json.loads(subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=self.env,
                                              check=True, capture_output=True,
                                              text=True).stdout)  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs = []
        if worker:
            self.worker_log = open(tmp / "worker.log", "w")  # noqa: SIM115 - closed in stop()
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
                 "--concurrency", "1", "--loglevel", "WARNING", "-Q", queue],
                cwd=ROOT, env=self.env, stdout=self.worker_log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port",
             str(self.port), "--no-access-log", "--log-level", "warning",
             "--timeout-graceful-shutdown", "3"],
            cwd=ROOT, env=self.env,
        ))  # fmt: skip
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if hasattr(self, "worker_log"):
            self.worker_log.close()


def twin_chunks(rate_hz: float, chunk_s: float, n_distinct: int):
    """Distinct chunks of the operando twin (3 depth regions, Li drifting) at ``rate_hz``."""
    from analysis_engine.synthetic.operando import operando_events

    regions = (np.arange(80) * 3 // 80 + 1)[:, None] * np.ones((1, 80), dtype=int)
    ev = operando_events(
        regions, np.array([0.30, 0.45, 0.60]), np.array([0.01, 0.0, -0.01]),
        duration_s=chunk_s * n_distinct, slice_s=chunk_s, frame_rate_hz=FRAME_RATE_HZ,
        counts_per_pixel_per_s=rate_hz / 6400, seed=1,
    )  # fmt: skip
    per = int(round(FRAME_RATE_HZ * chunk_s))
    cuts = np.searchsorted(ev.frame, np.arange(n_distinct + 1) * per)
    return [
        tuple(np.ascontiguousarray(a[cuts[i] : cuts[i + 1]]) for a in
              (ev.frame.astype(np.uint32), ev.row, ev.col, ev.energy_kev.astype(np.float32)))
        for i in range(n_distinct)
    ], per  # fmt: skip


def replay(stack: Stack, acq_id: int, chunks, per: int, n_chunks: int, chunk_s: float,
           t_start: float, out: dict) -> None:  # fmt: skip
    """The beamline script: PUT chunk k once the detector has written its last frame."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {stack.seed['token']}"
    n = len(chunks)
    written, late, events = [], [], 0
    for k in range(n_chunks):
        frame, row, col, energy = chunks[k % n]
        buf = io.BytesIO()
        np.savez(buf, frame=frame + np.uint32((k - k % n) * per), row=row, col=col,
                 energy_kev=energy)  # fmt: skip
        due = t_start + (k + 1) * chunk_s
        time.sleep(max(due - time.time(), 0.0))
        late.append(max(time.time() - due, 0.0))
        written.append(due)
        r = session.put(f"{stack.url}/api/v1/live/acquisitions/{acq_id}/chunks/{k}/",
                        data=buf.getvalue(),
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        r.raise_for_status()
        events += len(frame)
    out.update(written=written, late=late, events=events, sent_done=time.time())


def part_a(
    use_redis: bool, rate_hz: float, chunk_s: float, n_chunks: int, warmup: int, map_s: float
) -> dict:
    from playwright.sync_api import sync_playwright

    chunks, per = twin_chunks(rate_hz, chunk_s, 4)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="correli-bench-live-e2e-") as tmp:
        stack = Stack(Path(tmp), use_redis=use_redis, worker=True, map_interval_s=map_s)
        try:
            import requests

            auth = {"Authorization": f"Token {stack.seed['token']}"}
            acq = requests.post(f"{stack.url}/api/v1/live/acquisitions/", headers=auth, json={
                "project": stack.seed["project"], "name": "twin at the detector rate",
                "options": {"bin_width_kev": 0.05, "range_kev": [0, 160],
                            "target_counts_per_pixel": 10000, "frame_rate_hz": FRAME_RATE_HZ},
            }, timeout=30).json()  # fmt: skip
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
                page = browser.new_context(base_url=stack.url).new_page()
                page.goto("/accounts/login/")
                page.fill("input[name=username]", "bench")
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_load_state()
                page.goto(f"/live/{acq['id']}/")
                page.wait_for_function("window.CorreLiLive !== undefined")
                time.sleep(1.0)  # the stream says hello
                out: dict = {}
                t_start = time.time() + 0.5
                sender = threading.Thread(target=replay, args=(
                    stack, acq["id"], chunks, per, n_chunks, chunk_s, t_start, out))  # fmt: skip
                sender.start()
                sender.join()
                deadline = time.time() + 180
                while time.time() < deadline:
                    draws = page.evaluate("window.CorreLiLive.draws")
                    if draws and max(d["seq"] for d in draws) >= n_chunks - 1:
                        break
                    time.sleep(0.5)
                draws = page.evaluate("window.CorreLiLive.draws")
                browser.close()
        finally:
            stack.stop()
    written = np.array(out["written"])
    seqs = np.array([d["seq"] for d in draws])
    drawn = np.array([d["drawn_ms"] for d in draws]) / 1000
    received = np.array([d["received_ms"] for d in draws]) / 1000
    computed = np.array([datetime.fromisoformat(d["computed_at"]).timestamp() for d in draws])
    delays, parts = [], []
    for k in range(warmup, n_chunks):
        shown = np.flatnonzero(seqs >= k)
        if not shown.size:
            continue
        j = shown[0]
        delays.append(drawn[j] - written[k])
        parts.append((computed[j] - written[k], received[j] - computed[j], drawn[j] - received[j]))
    delays, parts = np.array(delays), np.array(parts)
    span = out["sent_done"] - t_start
    quarter = max(len(delays) // 4, 1)
    # kept up: the sender never fell a chunk behind the detector clock and the delay did not
    # grow from the first to the last quarter of the acquisition
    kept_up = bool(max(out["late"]) < 2 * chunk_s
                   and np.median(delays[-quarter:]) < 2 * np.median(delays[:quarter]) + chunk_s)  # fmt: skip
    return {
        "kept_up": kept_up,
        # 1-minute load average of the machine (2 cores) before and after: other work
        "load": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "delays_s": [round(float(d), 3) for d in delays],
        "twin_hz": sum(len(c[0]) for c in chunks) / (len(chunks) * chunk_s),
        "broker": "Redis DB 4 (+ live pub/sub)" if use_redis else "embedded (SQLite), no Redis",
        "map_interval_s": map_s,
        "rate_hz": rate_hz,
        "chunk_s": chunk_s,
        "chunks": n_chunks,
        "measured": int(delays.size),
        "maps_drawn": len(draws),
        "events": out["events"],
        "sustained_hz": out["events"] / span,
        "sender_late_max_s": float(max(out["late"])),
        "p50": float(np.median(delays)),
        "p95": float(np.percentile(delays, 95)),
        "max": float(delays.max()),
        "to_computed_p50": float(np.median(parts[:, 0])),
        "push_p50": float(np.median(parts[:, 1])),
        "draw_p50": float(np.median(parts[:, 2])),
    }


async def viewers(url: str, token: str, project: int, n_clients: int, n_events: int, env):
    import aiohttp

    latencies: list[float] = []
    ready = asyncio.Event()
    connected = [0]
    failed = [0]

    async def client(session):
        try:
            async with session.get(f"{url}/api/v1/events/",
                                   headers={"Authorization": f"Token {token}"},
                                   timeout=aiohttp.ClientTimeout(total=None)) as r:  # fmt: skip
                got = 0
                async for line in r.content:
                    if line.startswith(b"event: hello"):
                        connected[0] += 1
                        if connected[0] == n_clients:
                            ready.set()
                    if line.startswith(b"data: ") and b'"bench"' in line:
                        latencies.append(time.time() - json.loads(line[6:])["t"])
                        got += 1
                        if got == n_events:
                            return
        except (aiohttp.ClientError, OSError):
            failed[0] += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(session)) for _ in range(n_clients)]
        try:
            await asyncio.wait_for(ready.wait(), 180)
        except TimeoutError:
            pass
        connect_s = connected[0]
        await asyncio.sleep(1.0)
        publish = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISH, str(project), str(n_events), cwd=ROOT, env=env
        )
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 30 + n_events)
        except TimeoutError:
            for t in tasks:
                t.cancel()
        await publish.wait()
    return latencies, connect_s, failed[0]


def part_b(use_redis: bool, steps: list[int], n_events: int) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory(prefix="correli-bench-sse-") as tmp:
        stack = Stack(Path(tmp), use_redis=use_redis, worker=False)
        try:
            for n in steps:
                lat, connected, failed = asyncio.run(viewers(
                    stack.url, stack.seed["token"], stack.seed["project"], n, n_events,
                    stack.env))  # fmt: skip
                lat = np.array(lat)
                row = {
                    "clients": n,
                    "connected": connected,
                    "delivered": int(lat.size),
                    "expected": n * n_events,
                    "p50": float(np.median(lat)) if lat.size else float("nan"),
                    "p95": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                    "max": float(lat.max()) if lat.size else float("nan"),
                }
                out.append(row)
                print(row, file=sys.stderr, flush=True)
                if row["delivered"] < row["expected"] or not row["p95"] <= 2.0:
                    break
        finally:
            stack.stop()
    return out


def load_runs() -> dict:
    return json.loads(RUNS.read_text()) if RUNS.exists() else {"a": {}, "b": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rates", default="4e6", help="events/s, comma-separated (4 M: max)")
    parser.add_argument("--brokers", default="embedded,redis", help="embedded and/or redis")
    parser.add_argument("--chunk-s", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=30.0, help="acquisition length")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument(
        "--map-interval-s",
        type=float,
        default=0.0,
        help="CORRELI_LIVE_MAP_INTERVAL_S of the worker (0: a map every step)",
    )
    parser.add_argument("--steps", default="100,300,1000,2000,4000", help="SSE clients")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args()
    configs = [b == "redis" for b in args.brokers.split(",")]
    if True in configs and not redis_available():
        print("Redis DB 4 unreachable: embedded broker only", file=sys.stderr)
        configs = [False]
    n_chunks = int(round((8 if args.quick else args.seconds) / args.chunk_s))
    runs = load_runs()
    for rate in [] if args.skip_a else [float(r) for r in args.rates.split(",")]:
        for use_redis in configs:
            row = part_a(use_redis, rate, args.chunk_s, n_chunks, args.warmup, args.map_interval_s)
            print(row, file=sys.stderr, flush=True)
            runs["a"][f"{row['broker']}|{rate:.0f}|{args.map_interval_s}"] = row
            RUNS.write_text(json.dumps(runs, indent=1))
    steps = [10, 100] if args.quick else [int(n) for n in args.steps.split(",")]
    for use_redis in [] if args.skip_b else configs:
        runs["b"]["redis" if use_redis else "embedded"] = part_b(
            use_redis, steps, 5 if args.quick else 10
        )
        RUNS.write_text(json.dumps(runs, indent=1))
    write_report(runs, args)


def write_report(runs: dict, args) -> None:
    a_rows = sorted(
        runs["a"].values(), key=lambda r: (r["broker"], r.get("map_interval_s", 0), r["rate_hz"])
    )
    lines = [
        "# Live acquisitions measured end to end: frames written -> map on screen, SSE viewers",
        "",
        f"Machine: {host_platform.processor() or host_platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared with other work while measured), NUMBA_NUM_THREADS="
        f"{os.environ.get('NUMBA_NUM_THREADS', '-')}. `benchmarks/bench_live_e2e.py` "
        "(replaces the modelled delay of `live.md`; raw numbers in `live_e2e.json`).",
        "",
    ]
    if a_rows:
        lines += [
            f"## A. The operando twin replayed through the append API, {FRAME_RATE_HZ} frames/s, "
            f"chunks of {a_rows[0]['chunk_s']} s, {a_rows[0]['chunks']} chunks, 0.05 keV bins",
            "",
            "One uvicorn process, one Celery worker process (concurrency 1), SQLite, Chromium "
            "on the live page; all on the same 2 cores. Delay = map on screen (after Plotly's "
            "redraw) - newest frame of the chunk written (by the replay clock); the oldest frame "
            f"of a chunk waited {a_rows[0]['chunk_s']} s more. The first chunks (worker warm-up) "
            "are left out. *Kept up*: the sender never fell more than one chunk behind the "
            "detector clock and the delay did not grow over the run.",
            "",
            "| broker | map interval s | twin events/s | sent events/s | kept up | maps drawn | p50 s | p95 s "
            "| max s | oldest frame p95 s | written -> computed p50 | push p50 | draw p50 "
            "| sender lag max s | load before / after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *[
                f"| {r['broker']} | {r.get('map_interval_s', 0):g} | {r['twin_hz'] / 1e6:.2f} M | {r['sustained_hz'] / 1e6:.2f} M "
                f"| {'yes' if r['kept_up'] else 'no'} | {r['maps_drawn']} | {r['p50']:.2f} | "
                f"**{r['p95']:.2f}** | {r['max']:.2f} | {r['p95'] + r['chunk_s']:.2f} | "
                f"{r['to_computed_p50']:.2f} | {r['push_p50']:.3f} | {r['draw_p50']:.3f} | "
                f"{r['sender_late_max_s']:.2f} | "
                f"{' / '.join(str(x) for x in r.get('load', ['-', '-']))} |"
                for r in a_rows
            ],
            "",
        ]
    for key, rows in sorted(runs["b"].items()):
        how = "Redis DB 4 pub/sub" if key == "redis" else "no Redis: table polled every 0.5 s"
        lines += [
            f"## B. SSE viewers on one uvicorn process ({how})",
            "",
            "One event every 0.2 s; each client must receive every event. Steps grow until "
            "p95 > 2 s or an event is missing.",
            "",
            "| clients | connected | delivered | p50 s | p95 s | max s |",
            "|---|---|---|---|---|---|",
            *[
                f"| {r['clients']} | {r['connected']} | {r['delivered']}/{r['expected']} | "
                f"{r['p50']:.3f} | {r['p95']:.3f} | {r['max']:.3f} |"
                for r in rows
            ],
            "",
        ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
