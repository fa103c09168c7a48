"""Live acquisitions: delay from frames written to map shown, and SSE viewers per web process.

Part A (engine): a HEXITEC acquisition at the detector's maximum rate (4 M events/s, 9 kHz
frames) arrives in chunks every ``--chunk-s`` seconds. Each chunk is decoded (.npz), clustered
by :class:`analysis_engine.events.incremental.LiveEventSpectra` and the S/Li maps are
recomputed (:func:`live_maps`), the work ``live.services.process`` does per chunk. The delay
of the newest frame of a chunk to the map is: the chunk interval (the frame waits for its
chunk to close, at most) + processing + the push tick (``CORRELI_LIVE_POLL_S``; ~0 with Redis).
Baseline side by side: the batch ``SpectrumAccumulator`` on the same events in one block.

Part B (web): uvicorn (one process) on loopback with a fresh SQLite database; N concurrent
SSE clients (aiohttp) on ``/api/v1/events/``; a publisher process writes one live event every
0.2 s with its wall-clock send time; each client records receive - send.

    NUMBA_NUM_THREADS=2 .venv/bin/python benchmarks/bench_live.py [--quick]

Writes ``benchmarks/results/live.md``.
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
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "live.md"
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

EVENT_RATE_HZ = 4_000_000
FRAME_RATE_HZ = 9_000


def chunk_events(rng, first_frame: int, n_frames: int, n_events: int):
    frame = np.sort(rng.integers(first_frame, first_frame + n_frames, n_events)).astype(np.uint32)
    row = rng.integers(0, 80, n_events).astype(np.uint8)
    col = rng.integers(0, 80, n_events).astype(np.uint8)
    energy = rng.uniform(5.0, 150.0, n_events).astype(np.float32)
    return frame, row, col, energy


def part_a(chunk_s: float, n_chunks: int, poll_s: float) -> dict:
    from analysis_engine.events import EnergyBinning, SpectrumAccumulator
    from analysis_engine.events.incremental import LiveEventSpectra, live_maps
    from analysis_engine.io.live import read_event_chunk

    rng = np.random.default_rng(0)
    binning = EnergyBinning(0.0, 160.0, 0.05)
    live = LiveEventSpectra(SpectrumAccumulator(binning))
    n_events, n_frames = int(EVENT_RATE_HZ * chunk_s), int(FRAME_RATE_HZ * chunk_s)
    times, cluster_t, map_t, all_parts = [], [], [], []
    for i in range(n_chunks + 1):
        parts = chunk_events(rng, i * n_frames, n_frames, n_events)
        buf = io.BytesIO()
        np.savez(buf, frame=parts[0], row=parts[1], col=parts[2], energy_kev=parts[3])
        data = buf.getvalue()
        t0 = time.perf_counter()
        arrays = read_event_chunk(data)
        live.add_events(arrays["frame"], arrays["row"], arrays["col"], arrays["values"])
        t1 = time.perf_counter()
        snap = live.snapshot()
        live_maps(snap.pixel_histograms, snap.energy_bins_kev, elapsed_s=(i + 1) * chunk_s)
        t2 = time.perf_counter()
        if i:  # the first chunk pays numba's compilation
            times.append(t2 - t0)
            cluster_t.append(t1 - t0)
            map_t.append(t2 - t1)
            all_parts.append(parts)
    batch = SpectrumAccumulator(binning)
    joined = [np.concatenate([p[k] for p in all_parts]) for k in range(4)]
    t0 = time.perf_counter()
    batch.add_events(*joined)
    batch.result()
    batch_s = time.perf_counter() - t0
    proc = np.array(times)
    delay = chunk_s + proc + poll_s
    return {
        "chunk_s": chunk_s,
        "events_per_chunk": n_events,
        "cluster_p50_s": float(np.median(cluster_t)),
        "map_p50_s": float(np.median(map_t)),
        "process_p50_s": float(np.median(proc)),
        "process_p95_s": float(np.percentile(proc, 95)),
        "delay_p95_s": float(np.percentile(delay, 95)),
        "live_events_per_s": n_events / float(np.median(cluster_t)),
        "batch_events_per_s": len(joined[0]) / batch_s,
    }


SEED = r"""
import json, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from projects.models import Membership, Project
user = get_user_model().objects.create_user("bench", password="bench-pw-123")
project = Project.objects.create(name="Bench")
Membership.objects.create(project=project, user=user, role="owner")
print(json.dumps({"token": Token.objects.create(user=user).key, "project": project.pk}))
"""

PUBLISH = r"""
import sys, time, django
django.setup()
from live.models import LiveEvent
project, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    LiveEvent.objects.create(project_id=project, topic="bench", key=str(i),
                             payload={"type": "bench", "project": project, "t": time.time()})
    time.sleep(0.2)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def viewers(
    port: int, token: str, project: int, n_clients: int, n_events: int
) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    ready = asyncio.Event()
    connected = [0]

    async def client(session):
        async with session.get(
            f"http://127.0.0.1:{port}/api/v1/events/",
            headers={"Authorization": f"Token {token}"},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as r:
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

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(session)) for _ in range(n_clients)]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)
        publish = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISH, str(project), str(n_events)
        )
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 60 + n_events)
        except TimeoutError:
            for t in tasks:
                t.cancel()
        await publish.wait()
    return latencies


def part_b(client_counts: list[int], n_events: int) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory(prefix="correli-bench-live-") as tmp:
        var = Path(tmp)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "false",
            "CORRELI_VAR_DIR": str(var),
            "MEDIA_ROOT": str(var / "media"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        }
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "CORRELI_VAR_DIR")})
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                       check=True)  # fmt: skip
        seed = json.loads(subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=env,
                                         check=True, capture_output=True, text=True).stdout)  # fmt: skip
        os.environ["PYTHONPATH"] = env["PYTHONPATH"]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port),
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            for n in client_counts:
                lat = np.array(
                    asyncio.run(viewers(port, seed["token"], seed["project"], n, n_events))
                )
                expected = n * n_events
                out.append({
                    "clients": n,
                    "delivered": f"{lat.size}/{expected}",
                    "p50_s": float(np.median(lat)) if lat.size else float("nan"),
                    "p95_s": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                })  # fmt: skip
                print(out[-1], file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    a = part_a(chunk_s=0.5, n_chunks=4 if args.quick else 12, poll_s=0.5)
    print(a, file=sys.stderr)
    b = part_b([10, 100] if args.quick else [10, 100, 300], 5 if args.quick else 10)
    lines = [
        "# Live acquisitions: delay to map, SSE viewers",
        "",
        f"Machine: {host_platform.processor() or host_platform.machine()}, "
        f"{os.cpu_count()} CPUs, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '-')}. "
        f"`benchmarks/bench_live.py{' --quick' if args.quick else ''}`.",
        "",
        f"## A. Per chunk at {EVENT_RATE_HZ / 1e6:.0f} M events/s, {FRAME_RATE_HZ} Hz frames, "
        f"chunks of {a['chunk_s']} s ({a['events_per_chunk']:,} events), 0.05 keV bins",
        "",
        "| step | p50 s |",
        "|---|---|",
        f"| decode + cluster + accumulate | {a['cluster_p50_s']:.3f} |",
        f"| S and Li maps of the 80 x 80 x 3200 cube | {a['map_p50_s']:.3f} |",
        f"| whole step (p95 {a['process_p95_s']:.3f}) | {a['process_p50_s']:.3f} |",
        "",
        f"Clustering throughput live {a['live_events_per_s'] / 1e6:.1f} M events/s vs batch "
        f"(one block) {a['batch_events_per_s'] / 1e6:.1f} M events/s "
        f"(ratio {a['live_events_per_s'] / a['batch_events_per_s']:.2f}).",
        "",
        f"Modelled delay, newest frame written -> map pushed: chunk interval + step + poll "
        f"tick (0.5 s without Redis): p95 **{a['delay_p95_s']:.2f} s** (goal < 2 s). The "
        "browser's Plotly redraw is not included. Superseded by the delay measured end to end "
        "(real worker, server and Chromium) in `live_e2e.md`.",
        "",
        "## B. SSE viewers on one uvicorn process (SQLite, polling tick 0.5 s)",
        "",
        "| clients | events delivered | p50 publish -> receive s | p95 s |",
        "|---|---|---|---|",
        *[
            f"| {r['clients']} | {r['delivered']} | {r['p50_s']:.3f} | {r['p95_s']:.3f} |"
            for r in b
        ],
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
