"""The project event log that carries push updates across processes.

A worker process (Celery) and the web process share only the database and, when configured,
Redis. Every event that open pages should see (a new comment, a new dataset, an updated live
map) is one :class:`LiveEvent` row: the web process reads new rows (woken by Redis pub/sub
when a Redis URL is configured, otherwise by polling the table server-side) and pushes them to
the browsers of members of the event's project. Job progress needs no row: the job table
itself is read for rows whose ``updated_at`` moved.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


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


class AcquisitionStatus(models.TextChoices):
    ACQUIRING = "acquiring", "Acquiring"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class LiveAcquisition(models.Model):
    """A HEXITEC acquisition whose spectra and maps grow while the detector writes.

    Chunks (``LiveChunk``) arrive numbered by the sender; they are clustered strictly in
    sequence order, so ``processed_seq`` (the last one clustered) is the resume point.
    """

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="live_acquisitions"
    )
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=AcquisitionStatus.choices, default=AcquisitionStatus.ACQUIRING
    )
    # events options (bin_width_kev, range_kev, charge_sharing) + maps options
    # (target_counts_per_pixel, incident_kev, angle_deg)
    options = models.JSONField(default=dict, blank=True)
    processed_seq = models.IntegerField(default=-1)
    events_received = models.BigIntegerField(default=0)
    events_counted = models.BigIntegerField(default=0)
    frames = models.BigIntegerField(default=0)
    checkpoint = models.CharField(max_length=500, blank=True, default="")
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    spectra = models.ForeignKey(
        "catalogue.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    first_data_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"live acquisition {self.name} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("live:acquisition", args=[self.pk])


class LiveChunk(models.Model):
    acquisition = models.ForeignKey(
        LiveAcquisition, on_delete=models.CASCADE, related_name="chunks"
    )
    seq = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    events = models.BigIntegerField(default=0)
    path = models.CharField(max_length=500)
    # a raw-frame chunk is a byte range of a .bin file the acquisition software wrote
    # (``path``, from ``offset``, ``size`` bytes of whole frames), not a copy
    offset = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["acquisition", "seq"], name="live_chunk_unique_seq")
        ]

    def __str__(self) -> str:
        return f"chunk {self.seq} of live acquisition {self.acquisition_id}"
