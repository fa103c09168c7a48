"""``GET /api/v1/events/``: the server-sent event stream of the user's projects.

An async view (served by the ASGI server, one coroutine per open stream, no thread held).
Browsers authenticate with their session; API clients with ``Authorization: Token KEY``.
Only events of projects the user is a member of are ever sent; ``?project=ID`` narrows the
stream to one of them (404 for a project the user cannot see, as everywhere in the API).

Each message is ``event: <type>`` (``job``, ``comment``, ``dataset``, ``live-map``, ...)
with a JSON ``data`` line; events from the event log carry an ``id`` so that a reconnecting
client resumes with ``Last-Event-ID``. A comment line every ``CORRELI_LIVE_HEARTBEAT_S``
seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.http import JsonResponse, StreamingHttpResponse
from projects.permissions import projects_for
from rest_framework.authtoken.models import Token

from .hub import ChangeReader, Subscriber, hub

log = logging.getLogger(__name__)

# Membership is re-read this often, so a member removed from a project stops receiving its
# events within this time even on a stream that stays open.
_MEMBERSHIP_REFRESH_S = 30.0


def _token_user(header: str):
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    token = Token.objects.select_related("user").filter(key=key.strip()).first()
    return token.user if token and token.user.is_active else None


def _project_ids(user, only: int | None) -> set[int]:
    queryset = projects_for(user)
    if only is not None:
        queryset = queryset.filter(pk=only)
    return set(queryset.values_list("pk", flat=True))


def _frame(event_id: int | None, data: dict) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {data.get('type', 'message')}\ndata: {json.dumps(data)}\n\n"


async def event_stream(request):
    header = request.headers.get("Authorization", "")
    if header:
        user = await sync_to_async(_token_user)(header)
        if user is None:
            return JsonResponse({"detail": "Invalid token."}, status=401)
    else:
        user = await request.auser()
        if not user.is_authenticated:
            return JsonResponse(
                {"detail": "Authentication credentials were not provided."}, status=401
            )
    only = request.GET.get("project")
    if only is not None:
        if not only.isdigit():
            return JsonResponse({"detail": "project must be a project id (a number)."}, status=400)
        only = int(only)
    project_ids = await sync_to_async(_project_ids)(user, only)
    if only is not None and not project_ids:
        return JsonResponse({"detail": "No Project matches the given query."}, status=404)
    last = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0"
    subscriber = Subscriber(
        project_ids=project_ids, last_event_id=int(last) if last.isdigit() else 0
    )
    heartbeat_s = float(getattr(settings, "CORRELI_LIVE_HEARTBEAT_S", 15.0))

    async def stream():
        the_hub = hub()
        await the_hub.subscribe(subscriber)
        refreshed = time.monotonic()
        try:
            yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'projects': sorted(project_ids)})}\n\n"
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscriber.ready.wait(), heartbeat_s)
                if time.monotonic() - refreshed > _MEMBERSHIP_REFRESH_S:
                    subscriber.project_ids = await sync_to_async(_project_ids)(user, only)
                    refreshed = time.monotonic()
                items = subscriber.take()
                if not items:
                    yield ": keep-alive\n\n"
                for event_id, data in items:
                    if data.get("project") in subscriber.project_ids:
                        yield _frame(event_id, data)
        finally:
            the_hub.unsubscribe(subscriber)

    def stream_wsgi():
        # Under a WSGI server (runserver, a test live server) there is no event loop to share:
        # this stream holds its request thread and reads the changes itself.
        reader = ChangeReader()
        reader.start()
        if subscriber.last_event_id:
            reader.event_cursor = subscriber.last_event_id
        refreshed = beat = time.monotonic()
        yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'projects': sorted(project_ids)})}\n\n"
        try:
            while True:
                time.sleep(float(getattr(settings, "CORRELI_LIVE_POLL_S", 0.5)))
                if time.monotonic() - refreshed > _MEMBERSHIP_REFRESH_S:
                    subscriber.project_ids = _project_ids(user, only)
                    refreshed = time.monotonic()
                try:
                    changes = reader.read()
                except Exception:  # noqa: BLE001 - end the stream; the browser reconnects
                    log.warning("live event stream ended: database unavailable", exc_info=True)
                    return
                for project_id, topic, key, event_id, data in changes:
                    if project_id in subscriber.project_ids:
                        subscriber.offer(topic, key, event_id, data)
                items = subscriber.take()
                for event_id, data in items:
                    yield _frame(event_id, data)
                if items:
                    beat = time.monotonic()
                elif time.monotonic() - beat > heartbeat_s:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
        finally:
            with contextlib.suppress(Exception):
                close_old_connections()

    body = stream_wsgi() if isinstance(request, WSGIRequest) else stream()
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # nginx: do not buffer this response (the location block says so too)
    response["X-Accel-Buffering"] = "no"
    return response
