"""The project event log that carries push updates across processes.

A worker process (Celery) and the web process share only the database and, when configured,
Redis. Every event that open pages should see (a new comment, a new dataset, an updated live
map) is one :class:`LiveEvent` row: the web process reads new rows (woken by Redis pub/sub
when a Redis URL is configured, otherwise by polling the table server-side) and pushes them to
the browsers of members of the event's project. Job progress needs no row: the job table
itself is read for rows whose ``updated_at`` moved.
"""

from __future__ import annotations

from django.db import models


class LiveEvent(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="live_events"
    )
    # what changed: "comment", "dataset", "live-map", ...
    topic = models.CharField(max_length=32)
    # which object: successive events with the same (topic, key) supersede each other, so a
    # slow client only ever receives the latest one
    key = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.topic} {self.key} (project {self.project_id})"
