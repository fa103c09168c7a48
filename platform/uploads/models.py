"""A resumable upload in progress (tus 1.0.0) and, once complete, the Dataset it became.

The bytes live in a partial file under ``CORRELI_UPLOAD_TMP`` (outside the web root, never
served); this row records who may append to it, how far it has got and what the Dataset will
be linked to. ``offset`` is only advanced after the bytes before it are on disk (fsync), so a
server restart resumes from a correct offset.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, DatasetKind
from django.conf import settings
from django.db import models
from projects.models import Project


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    COMPLETE = "complete", "Complete"


class Upload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    filename = models.CharField(max_length=255)
    dataset_kind = models.CharField(
        max_length=32, choices=DatasetKind.choices, default=DatasetKind.OTHER
    )
    cell = models.ForeignKey(
        Cell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_state = models.ForeignKey(
        ChargeState, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    beamtime = models.ForeignKey(
        Beamtime, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    region = models.PositiveSmallIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Upload-Metadata as sent")
    length = models.BigIntegerField(help_text="Upload-Length in bytes")
    offset = models.BigIntegerField(default=0, help_text="bytes received and synced to disk")
    status = models.CharField(
        max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVING
    )
    dataset = models.OneToOneField(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="upload"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset}/{self.length} bytes)"

    @property
    def partial_path(self) -> Path:
        """Where the bytes received so far are kept until the last one arrives."""
        return Path(settings.CORRELI_UPLOAD_TMP) / f"{self.pk}.part"

    @property
    def is_complete(self) -> bool:
        return self.status == UploadStatus.COMPLETE
