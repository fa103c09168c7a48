"""Publishing events for open pages, from any process (web or worker).

``publish`` records a :class:`~live.models.LiveEvent` once the surrounding transaction commits
and, when a Redis URL is configured, wakes every web process at once over Redis pub/sub. The
table is the source of truth (it crosses processes on the embedded SQLite default too, and
lets a reconnecting client resume); pub/sub only shortens the delay.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import LiveEvent

log = logging.getLogger(__name__)

__all__ = [
    "REDIS_CHANNEL",
    "comment_payload",
    "dataset_payload",
    "job_payload",
    "publish",
    "redis_url",
]

REDIS_CHANNEL = "correli:live-events"
# Events are a push channel, not an archive: rows older than this are pruned.
RETENTION = timedelta(hours=1)
_PRUNE_EVERY = 500

_redis_client = None


def redis_url() -> str | None:
    """The Redis URL used for wake-ups, or None on the embedded default."""
    return getattr(settings, "CORRELI_LIVE_REDIS_URL", None) or None


def _wake() -> None:
    global _redis_client
    url = redis_url()
    if not url:
        return
    try:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(url, socket_timeout=1)
        _redis_client.publish(REDIS_CHANNEL, "1")
    except Exception as exc:  # noqa: BLE001 - the table still carries it at the next poll
        log.warning("live event wake-up over Redis failed: %s", exc)


def _write(project_id: int, topic: str, key: str, payload: dict) -> None:
    event = LiveEvent.objects.create(project_id=project_id, topic=topic, key=key, payload=payload)
    if event.pk % _PRUNE_EVERY == 0:
        LiveEvent.objects.filter(created_at__lt=timezone.now() - RETENTION).delete()
    _wake()


def publish(project_id: int, topic: str, key: str | int, payload: dict) -> None:
    """Push ``payload`` to members of project ``project_id`` with open pages or streams.

    Parameters
    ----------
    project_id
        The project whose members may see the event; nobody else ever does.
    topic
        What changed ("comment", "dataset", "live-map", ...).
    key
        Which object changed; a later event with the same topic and key supersedes an
        earlier one that a slow client has not received yet.
    payload
        JSON-serialisable body delivered as the event's data (``type`` is set to ``topic``).
    """
    body = {"type": topic, "project": project_id, **payload}
    transaction.on_commit(lambda: _write(project_id, topic, str(key), body))


def job_payload(job, results=()) -> dict:
    """The job fields a page renders: same names as ``GET /api/v1/jobs/{id}/``."""
    return {
        "type": "job",
        "id": job.pk,
        "project": job.project_id,
        "parent": job.parent_id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "step": job.step,
        "error": job.error,
        "page_url": job.get_absolute_url(),
        "results": [
            {"id": r.pk, "name": str(r), "kind": r.kind, "page_url": r.get_absolute_url()}
            for r in results
        ],
    }


def comment_payload(comment) -> dict:
    return {
        "id": comment.pk,
        "result": comment.result_id,
        "author": str(comment.author) if comment.author_id else "",
        "text": comment.text,
        "created_at": comment.created_at.isoformat() if comment.created_at else None,
    }


def dataset_payload(dataset) -> dict:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "kind": dataset.kind,
        "status": dataset.status,
        "page_url": dataset.get_absolute_url(),
    }
