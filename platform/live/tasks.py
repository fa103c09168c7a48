"""Celery entry points of live acquisitions (thin: ids in, one service call)."""

from celery import shared_task

from . import services


@shared_task(name="live.process_acquisition", ignore_result=True)
def process_acquisition(acq_id: int, held_map: bool = False) -> int:
    """Cluster what arrived; a map the interval held back is pushed by a delayed call."""
    done = services.process(acq_id, held_map=held_map)
    due = services.held_map_due_in(acq_id)
    if due is not None and (held_map or done):
        process_acquisition.apply_async((acq_id, True), countdown=due)
    return done
