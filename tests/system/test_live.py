"""The live event stream through the front proxy: unbuffered, long-lived, events delivered.

Behind nginx an SSE stream fails in quiet ways: a buffering proxy holds the first bytes back
(no ``hello`` until a buffer fills), and a short ``proxy_read_timeout`` (60 s by default)
closes an idle stream. This test keeps one stream open for longer than that default, checks
the first event arrives promptly, then pushes a live-acquisition chunk through the API and
expects the worker's ``live-map`` event on the same connection.
"""

from __future__ import annotations

import io
import json
import queue
import threading
import time

import numpy as np
import requests

from tests.system.conftest import BASE_URL, REQUEST_TIMEOUT_S, unique

FIRST_EVENT_S = 10.0  # hello, through the proxy, unbuffered
HELD_OPEN_S = 70.0  # longer than nginx's default proxy_read_timeout (60 s)
MAP_EVENT_S = 120.0  # chunk stored -> clustered by the worker -> pushed


def _read_stream(response: requests.Response, out: queue.Queue) -> None:
    """Put (arrival time, event name, data) of each message; (time, ":", "") per keep-alive."""
    event, data = "message", ""
    try:
        for raw in response.iter_lines(chunk_size=1, decode_unicode=True):
            line = raw or ""
            if line.startswith(":"):
                out.put((time.monotonic(), ":", ""))
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "":
                if data:
                    out.put((time.monotonic(), event, data))
                event, data = "message", ""
    except (requests.RequestException, AttributeError, ValueError) as exc:
        out.put((time.monotonic(), "closed", repr(exc)))
    else:
        out.put((time.monotonic(), "closed", "end of stream"))


def _next(messages: queue.Queue, deadline: float, want: str):
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {want!r} event in time"
        try:
            item = messages.get(timeout=left)
        except queue.Empty:
            continue
        assert item[1] != "closed", f"the stream closed while waiting for {want!r}: {item[2]}"
        if item[1] == want:
            return item


def _chunk() -> bytes:
    rng = np.random.default_rng(0)
    n = 20_000
    buffer = io.BytesIO()
    np.savez(
        buffer,
        frame=np.sort(rng.integers(0, 2000, n)).astype(np.uint32),
        row=rng.integers(0, 80, n).astype(np.uint8),
        col=rng.integers(0, 80, n).astype(np.uint8),
        energy_kev=rng.uniform(60.0, 120.0, n).astype(np.float32),
    )
    return buffer.getvalue()


def test_event_stream_through_the_proxy_is_unbuffered_long_lived_and_delivers(owner_api, project):
    opened = time.monotonic()
    response = requests.get(
        f"{BASE_URL}/api/v1/events/",
        params={"project": project["id"]},
        headers={**owner_api.session.headers, "Accept": "text/event-stream"},
        stream=True,
        timeout=(30, HELD_OPEN_S + MAP_EVENT_S),
    )
    try:
        assert response.status_code == 200, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("text/event-stream")
        messages: queue.Queue = queue.Queue()
        threading.Thread(target=_read_stream, args=(response, messages), daemon=True).start()

        hello_at, _, hello = _next(messages, opened + FIRST_EVENT_S, "hello")
        assert project["id"] in json.loads(hello)["projects"]

        # idle for longer than a default proxy read timeout: keep-alives, no close
        time.sleep(max(HELD_OPEN_S - (time.monotonic() - opened), 0))
        beats = []
        while not messages.empty():
            item = messages.get()
            assert item[1] != "closed", f"the stream closed after {item[0] - opened:.0f} s"
            beats.append(item)
        assert any(b[1] == ":" for b in beats), "no keep-alive reached the client"

        acq = owner_api.create(
            "live/acquisitions",
            project=project["id"],
            name=unique("system live"),
            options={"bin_width_kev": 0.5, "range_kev": [0, 160]},
        )
        put = owner_api.request(
            "PUT",
            f"/api/v1/live/acquisitions/{acq['id']}/chunks/0/",
            data=_chunk(),
            headers={"Content-Type": "application/octet-stream"},
            timeout=REQUEST_TIMEOUT_S,
        )
        assert put.status_code == 201, (put.status_code, put.text[:300])
        deadline = time.monotonic() + MAP_EVENT_S
        while True:
            _, _, data = _next(messages, deadline, "live-map")
            body = json.loads(data)
            if body["id"] == acq["id"] and body.get("processed_seq") == 0:
                break
        assert body["project"] == project["id"] and body["status"] == "acquiring"
        assert len(body["counts"]) == 80
        assert time.monotonic() - opened > HELD_OPEN_S  # all on the one long-lived connection
    finally:
        response.close()
