"""Background checks of stored datasets (thin: load by id, call the engine, store)."""

from celery import shared_task

from catalogue.models import Dataset, DatasetStatus
from catalogue.services import validate_dataset_file, verify_checksum


@shared_task(name="catalogue.inspect_dataset")
def inspect_dataset(dataset_id: int) -> dict:
    """Hash the stored file and sniff its format with ``analysis_engine.io.sniff``.

    Sets the dataset's sha256, size, kind (when declared 'other'), metadata and status
    (ready or rejected with the engine's message).
    """
    dataset = Dataset.objects.get(pk=dataset_id)
    dataset.status = DatasetStatus.VALIDATING
    dataset.save(update_fields=["status", "updated_at"])
    validate_dataset_file(dataset)
    return {"status": dataset.status, "kind": dataset.kind, "sha256": dataset.sha256}


@shared_task(name="catalogue.verify_dataset_checksum")
def verify_dataset_checksum(dataset_id: int) -> bool:
    """True when the stored file still matches its recorded sha256 (bit rot, tampering)."""
    dataset = Dataset.objects.get(pk=dataset_id)
    ok = verify_checksum(dataset)
    dataset.metadata = {**(dataset.metadata or {}), "checksum_ok": ok}
    dataset.save(update_fields=["metadata", "updated_at"])
    return ok
