"""Background previews (thin: load by id, compute through ``previews``, store)."""

from catalogue.models import Dataset, DatasetStatus
from celery import shared_task

from analysis_engine.errors import EngineInputError

from . import previews


@shared_task(name="viewer.compute_dataset_preview", ignore_result=True)
def compute_dataset_preview(dataset_id: int) -> bool:
    """Compute and store the preview of a ready dataset; False when there is nothing to do."""
    dataset = Dataset.objects.filter(pk=dataset_id, status=DatasetStatus.READY).first()
    if dataset is None or not previews.has_preview(dataset):
        return False
    if previews.stored_preview(dataset) is not None:
        return False
    try:
        previews.store_preview(dataset)
    except EngineInputError:
        return False  # the file went missing meanwhile
    return True
