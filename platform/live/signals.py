"""Model signals that publish events: new comments, new or changed datasets, job saves.

Job progress written with ``QuerySet.update`` fires no signal; the stream reads those changes
from the job table itself (``updated_at``), so nothing in the jobs app has to call us. A job
``save()`` (start, success) only wakes the web processes early.
"""

from __future__ import annotations

from catalogue.models import Dataset
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from jobs.models import AnalysisJob, Comment

from .events import _wake, comment_payload, dataset_payload, publish


@receiver(post_save, sender=Dataset, dispatch_uid="live-dataset")
def _dataset_saved(sender, instance, created, **kwargs):
    publish(instance.project_id, "dataset", instance.pk, dataset_payload(instance))


@receiver(post_save, sender=Comment, dispatch_uid="live-comment")
def _comment_saved(sender, instance, created, **kwargs):
    if created:
        publish(instance.project_id, "comment", instance.pk, comment_payload(instance))


@receiver(post_save, sender=AnalysisJob, dispatch_uid="live-job")
def _job_saved(sender, instance, **kwargs):
    transaction.on_commit(_wake)
