"""``{% upload_dropzone %}``: the drag-and-drop upload widget, for any page.

Usage: ``{% load upload_tags %}{% upload_dropzone project=project cell=object %}``. Shows the
widget when the user may upload to at least one project (or to ``project`` when given), and a
short note otherwise.
"""

from catalogue.models import Beamtime, Cell, ChargeState, DatasetKind
from django import template
from django.urls import reverse
from projects.permissions import can_edit, editable_projects_for

register = template.Library()

MAX_CHOICES = 500


def _pk(value):
    if value is None or value == "":
        return None
    pk = getattr(value, "pk", value)
    try:
        return int(pk)
    except (TypeError, ValueError):
        return None


def _resolve(model, value, project_ids):
    """A catalogue object given as an object or an id, if it is in one of ``project_ids``."""
    if value is None or hasattr(value, "project_id"):
        return value
    pk = _pk(value)
    return model.objects.filter(pk=pk, project_id__in=project_ids).first() if pk else None


@register.inclusion_tag("uploads/_dropzone.html", takes_context=True)
def upload_dropzone(
    context, project=None, cell=None, charge_state=None, beamtime=None, region=None
):
    request = context["request"]
    user = request.user
    projects = list(editable_projects_for(user).distinct().order_by("name"))
    project_ids = [p.pk for p in projects]
    cell = _resolve(Cell, cell, project_ids)
    charge_state = _resolve(ChargeState, charge_state, project_ids)
    beamtime = _resolve(Beamtime, beamtime, project_ids)
    if cell is None and charge_state is not None:
        cell = charge_state.cell
    selected_project = _pk(project)
    # A cell or charge state implies its project.
    for link in (charge_state, cell, beamtime):
        if selected_project is None and getattr(link, "project_id", None):
            selected_project = link.project_id
    if selected_project is None and len(projects) == 1:
        selected_project = projects[0].pk
    allowed = bool(projects) and (selected_project is None or can_edit(user, selected_project))
    return {
        "allowed": allowed,
        "projects": projects,
        "cells": Cell.objects.filter(project_id__in=project_ids).order_by("name")[:MAX_CHOICES],
        "charge_states": ChargeState.objects.filter(project_id__in=project_ids)
        .select_related("cell")
        .order_by("cell__name", "cycle_number")[:MAX_CHOICES],
        "beamtimes": Beamtime.objects.filter(project_id__in=project_ids)[:MAX_CHOICES],
        "kinds": DatasetKind.choices,
        "selected": {
            "project": selected_project,
            "cell": _pk(cell),
            "charge_state": _pk(charge_state),
            "beamtime": _pk(beamtime),
            "region": _pk(region),
        },
        "endpoint": reverse("upload-list"),
        "csrf_token": context.get("csrf_token"),
        "dataset_url_prefix": "/catalogue/datasets/",
    }
