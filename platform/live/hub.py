"""One fan-out hub per web process: reads new events once, hands them to every open stream.

Each open stream (a browser tab's ``EventSource`` or an API client) is a :class:`Subscriber`
with the set of project ids its user belongs to. The hub reads the event table and the job
table once per tick for all subscribers together (so a hundred viewers cost the database what
one costs), and offers every change to the subscribers of that project only. A subscriber keeps
only the latest change per object (job, live map, ...): a slow client skips intermediate
progress instead of piling it up, and never slows the hub or the other clients.

The tick is woken early by Redis pub/sub when a Redis URL is configured (see
:mod:`live.events`); otherwise it polls every ``CORRELI_LIVE_POLL_S`` seconds, which works
across the web and worker processes on the embedded SQLite default too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from jobs.models import FINISHED_STATUSES, AnalysisJob

from .events import REDIS_CHANNEL, job_payload, redis_url
from .models import LiveEvent

log = logging.getLogger(__name__)

# Job rows are found by updated_at; writers on other machines may lag our clock a little, so
# each read looks back this far and drops what it has already seen.
_JOB_LOOKBACK = timedelta(seconds=3)
_EVENT_BATCH = 2000


@dataclass(eq=False)
class Subscriber:
    """One open stream: the projects it may see and its pending (latest-per-object) events."""

    project_ids: set[int]
    last_event_id: int = 0
    pending: dict[tuple[str, str], tuple[int | None, dict]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0

    def offer(self, topic: str, key: str, event_id: int | None, data: dict) -> None:
        if event_id is not None and event_id <= self.last_event_id:
            return
        if self.pending.pop((topic, key), None) is not None:
            self.dropped += 1
        self.pending[(topic, key)] = (event_id, data)
        self.ready.set()

    def take(self) -> list[tuple[int | None, dict]]:
        items = list(self.pending.values())
        self.pending.clear()
        self.ready.clear()
        for event_id, _ in items:
            if event_id is not None and event_id > self.last_event_id:
                self.last_event_id = event_id
        return items


def _poll_s() -> float:
    return float(getattr(settings, "CORRELI_LIVE_POLL_S", 0.5))


class Hub:
    """The per-event-loop reader that feeds every :class:`Subscriber` of this process."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # one thread (one database connection) for all the hub's reads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-hub")
        self.reader = ChangeReader()
        self._start_lock = asyncio.Lock()

    async def _db(self, fn, *args):
        def call():
            close_old_connections()
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def subscribe(self, subscriber: Subscriber) -> None:
        if subscriber.last_event_id:
            # a reconnecting client (Last-Event-ID) gets what it missed, latest per object
            for event in await self._db(_events_after, subscriber.last_event_id, None):
                if event.project_id in subscriber.project_ids:
                    subscriber.offer(event.topic, event.key, event.pk, event.payload)
        self.subscribers.add(subscriber)
        async with self._start_lock:
            if self._task is None or self._task.done():
                # The cursors are taken before the stream says hello, so that nothing written
                # after a client is told it is connected can fall before them.
                await self._db(self.reader.start)
                self._task = asyncio.get_running_loop().create_task(self._run())

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def _run(self) -> None:
        listener = None
        try:
            if redis_url():
                listener = asyncio.get_running_loop().create_task(self._listen_redis())
            while self.subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), _poll_s())
                self.wake.clear()
                await self.tick()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a hub that dies must not leave streams hanging
            log.exception("live event hub stopped")
            for subscriber in list(self.subscribers):
                subscriber.offer("hub", "error", None, {"type": "reconnect"})
        finally:
            if listener is not None:
                listener.cancel()

    async def _listen_redis(self) -> None:
        import redis.asyncio as aioredis

        while self.subscribers:
            try:
                client = aioredis.Redis.from_url(redis_url())
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(REDIS_CHANNEL)
                    while self.subscribers:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=5
                        )
                        if message is not None:
                            self.wake.set()
                await client.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - fall back on polling until Redis is back
                log.warning("live events: Redis pub/sub unavailable (%s); polling", exc)
                await asyncio.sleep(5)

    async def tick(self) -> None:
        """Read what changed since the last tick and offer it to the subscribers."""
        changes = await self._db(self.reader.read)
        for project_id, topic, key, event_id, data in changes:
            for subscriber in self.subscribers:
                if project_id in subscriber.project_ids:
                    subscriber.offer(topic, key, event_id, data)


class ChangeReader:
    """Reads what changed since its last read: new event rows and job rows whose state moved.

    Synchronous (ORM); the hub runs it in its own thread, a WSGI stream in its request thread.
    """

    def __init__(self) -> None:
        self.event_cursor = 0
        self.job_since = None
        self.job_seen: dict[int, tuple] = {}

    def start(self) -> None:
        self.event_cursor, self.job_since = _cursors()

    def read(self) -> list[tuple[int, str, str, int | None, dict]]:
        """``(project_id, topic, key, event_id, data)`` of every change since the last read."""
        now = timezone.now()
        changes = []
        for event in _events_after(self.event_cursor, _EVENT_BATCH):
            self.event_cursor = max(self.event_cursor, event.pk)
            changes.append((event.project_id, event.topic, event.key, event.pk, event.payload))
        moved = AnalysisJob.objects.filter(updated_at__gte=self.job_since - _JOB_LOOKBACK).order_by(
            "updated_at"
        )
        horizon = now - 2 * _JOB_LOOKBACK
        for job in moved:
            signature = (job.status, job.progress, job.step, job.error, job.updated_at)
            if self.job_seen.get(job.pk) == signature:
                continue
            self.job_seen[job.pk] = signature
            results = list(job.results.all()) if job.status in FINISHED_STATUSES else []
            changes.append((job.project_id, "job", str(job.pk), None, job_payload(job, results)))
        self.job_seen = {k: v for k, v in self.job_seen.items() if v[-1] >= horizon}
        self.job_since = now
        return changes


def _cursors():
    last = LiveEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return last, timezone.now()


def _events_after(event_id: int, limit: int | None):
    queryset = LiveEvent.objects.filter(id__gt=event_id).order_by("id")
    if limit is None:
        queryset = queryset.filter(created_at__gte=timezone.now() - timedelta(hours=1))
        return list(queryset[:_EVENT_BATCH])
    return list(queryset[:limit])


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (one per web process under an ASGI server)."""
    loop = asyncio.get_running_loop()
    for stale in [k for k in _hubs if k.is_closed()]:
        _hubs.pop(stale)._executor.shutdown(wait=False)
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
