"""The server-sent event stream: push of job, comment and dataset changes, per project only.

Each test opens ``GET /api/v1/events/`` through Django's async test client (the same ASGI
path the server runs), changes rows the way the worker and the web process do (jobs through
``QuerySet.update`` as the progress callback writes them, comments and datasets through the
ORM), and reads frames off the stream.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings
from django.utils import timezone
from jobs.models import AnalysisJob, Comment, Result
from live.hub import Subscriber
from rest_framework.authtoken.models import Token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
]

FAST = override_settings(CORRELI_LIVE_POLL_S=0.05, CORRELI_LIVE_HEARTBEAT_S=0.2)


def parse(chunk: bytes) -> list[dict]:
    frames = []
    for block in chunk.decode().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "data" in fields:
            frames.append(
                {
                    "sse_id": fields.get("id"),
                    "event": fields.get("event"),
                    **json.loads(fields["data"]),
                }
            )
    return frames


async def read_until(response, predicate, *, timeout_s=30.0) -> list[dict]:
    """Frames read off ``response`` until one satisfies ``predicate`` (all of them returned)."""
    seen = []
    iterator = response.streaming_content.__aiter__()

    async def loop():
        while True:
            for frame in parse(await iterator.__anext__()):
                seen.append(frame)
                if predicate(frame):
                    return

    await asyncio.wait_for(loop(), timeout_s)
    return seen


async def open_stream(client, path="/api/v1/events/", headers=None):
    response = await client.get(path, headers=headers or {})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    await read_until(response, lambda f: f["event"] == "hello")
    return response


def make_job(project, **extra):
    return AnalysisJob.objects.create(project=project, kind="events", job_key="k", **extra)


def run(coro):
    with FAST:
        asyncio.run(coro)


def test_stream_needs_authentication(db):
    async def check():
        response = await AsyncClient().get("/api/v1/events/")
        assert response.status_code == 401

        bad = await AsyncClient().get("/api/v1/events/", headers={"Authorization": "Token nope"})
        assert bad.status_code == 401

    run(check())


def test_another_projects_stream_is_404(project, outsider):
    token = Token.objects.create(user=outsider)

    async def check():
        response = await AsyncClient().get(
            f"/api/v1/events/?project={project.pk}", headers={"Authorization": f"Token {token.key}"}
        )
        assert response.status_code == 404
        bad = await AsyncClient().get(
            "/api/v1/events/?project=x", headers={"Authorization": f"Token {token.key}"}
        )
        assert bad.status_code == 400

    run(check())


def test_job_progress_and_finish_are_pushed_to_members_only(project, viewer, outsider, factories):
    job = make_job(project, status="running")
    foreign_project = outsider.memberships.get().project
    foreign_job = make_job(foreign_project, status="running")
    viewer_token = Token.objects.create(user=viewer).key
    outsider_token = Token.objects.create(user=outsider).key

    async def check():
        mine = await open_stream(AsyncClient(), headers={"Authorization": f"Token {viewer_token}"})
        theirs = await open_stream(
            AsyncClient(), headers={"Authorization": f"Token {outsider_token}"}
        )

        # written as the worker's progress callback writes it: QuerySet.update, no signal
        await sync_to_async(AnalysisJob.objects.filter(pk=job.pk).update)(
            progress=0.5, step="clustering", updated_at=timezone.now()
        )
        frames = await read_until(mine, lambda f: f.get("progress") == 0.5)
        assert frames[-1]["event"] == "job" and frames[-1]["sse_id"] is None
        assert frames[-1]["id"] == job.pk
        assert frames[-1]["step"] == "clustering" and frames[-1]["project"] == project.pk

        def finish():
            job.refresh_from_db()
            job.status, job.progress, job.step = "succeeded", 1.0, "done"
            job.save()
            Result.objects.create(project=project, job=job, kind="events", name="spectra")
            AnalysisJob.objects.filter(pk=foreign_job.pk).update(
                progress=0.9, updated_at=timezone.now()
            )
            AnalysisJob.objects.filter(pk=job.pk).update(updated_at=timezone.now())

        await sync_to_async(finish)()
        frames = await read_until(mine, lambda f: f.get("status") == "succeeded" and f["results"])
        assert frames[-1]["results"][0]["name"] == "spectra"
        assert all(f.get("project") == project.pk for f in frames if f["event"] == "job")

        # the outsider's stream is live (it gets its own job) but never the viewer's job
        seen = await read_until(theirs, lambda f: f.get("progress") == 0.9)
        assert {f["id"] for f in seen if f["event"] == "job"} == {foreign_job.pk}
        assert all(f.get("project") != project.pk for f in seen)
        assert not any(f.get("type") == "job" and f.get("id") == job.pk for f in seen)

    run(check())


def test_comments_and_datasets_are_pushed_with_ids_and_resume(
    project, analyst, outsider, factories
):
    job = make_job(project, status="succeeded")
    result = Result.objects.create(project=project, job=job, kind="events", name="spectra")
    other_project = outsider.memberships.get().project

    async def check():
        client = AsyncClient()
        await client.aforce_login(analyst)
        stream = await open_stream(client, f"/api/v1/events/?project={project.pk}")

        await sync_to_async(factories.make_dataset)(other_project, name="foreign.h5")
        await sync_to_async(Comment.objects.create)(
            project=project, result=result, author=analyst, text="Li is low in region 3"
        )
        frames = await read_until(stream, lambda f: f["event"] == "comment")
        assert frames[-1]["text"] == "Li is low in region 3"
        assert frames[-1]["result"] == result.pk
        comment_id = int(frames[-1]["sse_id"])

        await sync_to_async(factories.make_dataset)(project, name="scan-2.h5")
        frames = await read_until(stream, lambda f: f["event"] == "dataset")
        assert frames[-1]["name"] == "scan-2.h5"
        assert not any(f.get("name") == "foreign.h5" for f in frames)

        # a client that reconnects with Last-Event-ID gets what it missed, and no more
        again = await client.get(
            f"/api/v1/events/?project={project.pk}", headers={"Last-Event-ID": str(comment_id)}
        )
        frames = await read_until(again, lambda f: f["event"] == "dataset")
        events = [f["event"] for f in frames if f["event"] != "job"]
        assert events == ["hello", "dataset"]

    run(check())


def test_a_slow_subscriber_keeps_only_the_latest_update_per_object():
    subscriber = Subscriber(project_ids={1})
    for i in range(100):
        subscriber.offer("job", "7", None, {"type": "job", "id": 7, "progress": i / 100})
    subscriber.offer("comment", "3", 12, {"type": "comment", "id": 3})
    items = subscriber.take()
    assert [data for _, data in items] == [
        {"type": "job", "id": 7, "progress": 0.99},
        {"type": "comment", "id": 3},
    ]
    assert subscriber.dropped == 99 and subscriber.last_event_id == 12
    # an event already delivered (id at or below the cursor) is not offered again
    subscriber.offer("comment", "3", 12, {"type": "comment", "id": 3})
    assert subscriber.take() == []


def test_under_wsgi_the_stream_reads_changes_itself(project, analyst, client_as):
    """runserver and pytest-django's live server speak WSGI: the stream still pushes."""
    job = make_job(project, status="running")
    with FAST:
        response = client_as(analyst).get("/api/v1/events/")
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        chunks = iter(response.streaming_content)
        assert parse(next(chunks))[0]["event"] == "hello"
        AnalysisJob.objects.filter(pk=job.pk).update(progress=0.25, updated_at=timezone.now())
        frames = []
        while not any(f.get("progress") == 0.25 for f in frames):
            frames += parse(next(chunks))
        assert frames[-1]["id"] == job.pk and frames[-1]["event"] == "job"
        response.close()


def _redis_or_skip() -> str:
    import os

    import redis

    url = os.environ.get("CORRELI_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):  # CI provides Redis: its absence there is a failure
            pytest.fail(f"no Redis at {url}, which CI provides")
        pytest.skip(f"no Redis at {url}")
    return url


def test_with_redis_a_publish_wakes_the_stream_without_waiting_for_the_poll(
    project, analyst, factories
):
    url = _redis_or_skip()

    async def check():
        client = AsyncClient()
        await client.aforce_login(analyst)
        stream = await open_stream(client)
        # the hub's first read (its cursor) happens as the stream opens; give it a moment
        await asyncio.sleep(0.5)
        await sync_to_async(factories.make_dataset)(project, name="woken.h5")
        # polling alone would take 30 s: only the pub/sub wake-up delivers it in time
        frames = await read_until(stream, lambda f: f["event"] == "dataset", timeout_s=5)
        assert frames[-1]["name"] == "woken.h5"

    with override_settings(CORRELI_LIVE_POLL_S=30, CORRELI_LIVE_REDIS_URL=url):
        asyncio.run(check())
