"""ORM orchestration for datasets: hashing and format checking of a stored file."""

from __future__ import annotations

import hashlib

from django.db.models import ProtectedError, RestrictedError

from analysis_engine.errors import EngineInputError
from analysis_engine.io.sniff import sniff
from catalogue.models import Dataset, DatasetStatus

CHUNK_BYTES = 4 * 1024 * 1024


def file_sha256(path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def validate_dataset_file(dataset: Dataset, *, compute_checksum: bool = True) -> Dataset:
    """Hash (unless already known) and sniff the stored file; set status ready or rejected.

    A file whose content is another kind than declared, or that breaks its format, is kept
    with status ``rejected`` and the engine's message.
    """
    path = dataset.file.path
    if compute_checksum or not dataset.sha256:
        dataset.sha256, dataset.size = file_sha256(path)
    try:
        declared = None if dataset.kind in ("", "other") else dataset.kind
        info = sniff(path, expected_kind=declared)
    except EngineInputError as exc:
        dataset.status = DatasetStatus.REJECTED
        dataset.status_message = str(exc)
    else:
        if dataset.kind in ("", "other"):
            dataset.kind = info.kind
        dataset.status = DatasetStatus.READY
        dataset.status_message = info.describe()
        dataset.metadata = {**info.metadata, **(dataset.metadata or {}), "format": info.format}
    dataset.save()
    return dataset


def verify_checksum(dataset: Dataset) -> bool:
    """True when the stored file still hashes to the recorded sha256."""
    digest, size = file_sha256(dataset.file.path)
    return digest == dataset.sha256 and size == dataset.size


def delete_refusal(obj) -> str | None:
    """Why ``obj`` cannot be deleted (objects still linked to it), or None."""
    from django.db import router
    from django.db.models.deletion import Collector

    collector = Collector(using=router.db_for_write(type(obj)))
    try:
        collector.collect([obj])
    except (ProtectedError, RestrictedError) as exc:
        from projects.api.exceptions import protected_message

        return protected_message(exc)
    return None
