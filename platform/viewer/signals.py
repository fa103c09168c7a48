"""Start a dataset's preview job when it becomes ready, and the build of the reduced volume
copies for the viewer's side planes when a reconstruction or segmentation is stored.

``post_save`` of a Dataset whose status is ready, whose kind has a preview and whose current
file has no stored preview yet enqueues ``viewer.compute_dataset_preview`` once the
transaction commits (ids only). The task is light (a bounded read) and idempotent, so a second
save before it ran costs one duplicate check, not a second computation.
"""

from __future__ import annotations

import logging

from catalogue.models import Dataset, DatasetKind, DatasetStatus
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_save
from jobs.models import Result

from analysis_engine.errors import EngineError

from . import previews
from .tasks import build_view_volumes, compute_dataset_preview

log = logging.getLogger(__name__)


VOLUME_RESULT_KINDS = ("reconstruct", "segment")


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
    if instance.kind == DatasetKind.XCT_RECONSTRUCTION:  # first time ready: its side planes
        transaction.on_commit(lambda: _enqueue(build_view_volumes, "datasets", dataset_id))


def result_saved(sender, instance: Result, created: bool = False, **kwargs) -> None:
    if created and instance.kind in VOLUME_RESULT_KINDS and instance.output_file:
        pk = instance.pk
        transaction.on_commit(lambda: _enqueue(build_view_volumes, "results", pk))


def _enqueue(task, *args) -> None:
    try:
        task.delay(*args)
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not fail the upload
        log.warning("could not enqueue %s%s: %s", task.name, args, exc)


def connect() -> None:
    post_save.connect(dataset_saved, sender=Dataset, dispatch_uid="viewer-dataset-preview")
    post_save.connect(result_saved, sender=Result, dispatch_uid="viewer-result-volumes")
