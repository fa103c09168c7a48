"""Background previews (thin: load by id, compute through ``previews``, store)."""

from catalogue.models import Dataset, DatasetStatus
from celery import shared_task
from jobs.models import Result

from analysis_engine.errors import EngineError, EngineInputError

from . import previews, services
from .sources import source_for_dataset, source_for_result


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


@shared_task(name="viewer.build_view_volumes", ignore_result=True)
def build_view_volumes(scope: str, pk: int, max_pixels: int = services.DEFAULT_VIEW_PIXELS) -> int:
    """Build the reduced copies the viewer's side planes read (results: ``scope="results"``,
    datasets: ``"datasets"``), so the first viewer does not wait; returns how many exist."""
    try:
        if scope == "results":
            obj = Result.objects.filter(pk=pk).first()
            source = source_for_result(obj) if obj is not None else None
        else:
            obj = Dataset.objects.filter(pk=pk).first()
            source = source_for_dataset(obj) if obj is not None else None
    except (EngineError, OSError):
        return 0  # nothing the viewer can show; its page says why
    if source is None or source.kind != "volume":
        return 0
    built = 0
    for spec in source.layers.values():
        for step in services.side_plane_steps(spec.shape, max_pixels=max_pixels):
            built += services.ensure_view_volume(spec, step, wait_s=0) is not None
    return built
