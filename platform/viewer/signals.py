"""Start a dataset's preview job when it becomes ready.

``post_save`` of a Dataset whose status is ready, whose kind has a preview and whose current
file has no stored preview yet enqueues ``viewer.compute_dataset_preview`` once the
transaction commits (ids only). The task is light (a bounded read) and idempotent, so a second
save before it ran costs one duplicate check, not a second computation.
"""

from __future__ import annotations

import logging

from catalogue.models import Dataset, DatasetStatus
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_save

from analysis_engine.errors import EngineError

from . import previews
from .tasks import compute_dataset_preview

log = logging.getLogger(__name__)


def dataset_saved(sender, instance: Dataset, **kwargs) -> None:
    if instance.status != DatasetStatus.READY or not previews.has_preview(instance):
        return
    try:
        if default_storage.exists(previews.stored_preview_name(instance)):
            return
    except (EngineError, OSError):
        return  # no file to preview; the page says so on request
    dataset_id = instance.pk
    transaction.on_commit(lambda: _enqueue(compute_dataset_preview, dataset_id))


def _enqueue(task, dataset_id: int) -> None:
    try:
        task.delay(dataset_id)
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not fail the upload
        log.warning("could not enqueue the preview of dataset %s: %s", dataset_id, exc)


def connect() -> None:
    post_save.connect(dataset_saved, sender=Dataset, dispatch_uid="viewer-dataset-preview")
