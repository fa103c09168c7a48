"""Bump the dataset-list cache's per-project data versions on every catalogue write.

Connected in ``CatalogueConfig.ready``. Saves and deletes (cascaded ones included) of projects
and catalogue objects send these signals; ``QuerySet.update`` and ``bulk_create`` do not, so
code that changes catalogue rows that way must call ``bump_projects`` itself.
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from projects.models import Project

from catalogue.api.cache import bump_projects
from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample

CATALOGUE_MODELS = (Sample, Cell, ChargeState, Beamtime, Dataset)


def _bump(project_ids: list) -> None:
    # Now, and again after the transaction commits: a reader that saw the first bump while the
    # write was still uncommitted may have cached the old rows under the new version.
    bump_projects(project_ids)
    transaction.on_commit(lambda: bump_projects(project_ids))


def catalogue_changed(sender, instance, **kwargs) -> None:
    _bump([instance.project_id])


def project_changed(sender, instance, **kwargs) -> None:
    _bump([instance.pk])  # a rename reorders the list (it is ordered by project)


def user_deleted(sender, instance, **kwargs) -> None:
    # created_by is SET_NULL by an UPDATE that sends no signal
    _bump(list(Dataset.objects.filter(created_by=instance).values_list("project_id", flat=True)))


def connect() -> None:
    for model in CATALOGUE_MODELS:
        post_save.connect(catalogue_changed, sender=model, dispatch_uid=f"cat-ver-s-{model}")
        post_delete.connect(catalogue_changed, sender=model, dispatch_uid=f"cat-ver-d-{model}")
    post_save.connect(project_changed, sender=Project, dispatch_uid="cat-ver-project-s")
    post_delete.connect(project_changed, sender=Project, dispatch_uid="cat-ver-project-d")
    pre_delete.connect(user_deleted, sender=settings.AUTH_USER_MODEL, dispatch_uid="cat-ver-user")
