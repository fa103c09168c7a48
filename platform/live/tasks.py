"""Celery entry points of live acquisitions (thin: ids in, one service call)."""

from celery import shared_task

from . import services


@shared_task(name="live.process_acquisition", ignore_result=True)
def process_acquisition(acq_id: int) -> int:
    return services.process(acq_id)
