from catalogue.models import Cell, Sample
from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from projects.permissions import can_edit

from jobs.engine_registry import PIPELINE_KIND
from jobs.models import AnalysisJob

register = template.Library()


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@register.simple_tag
def table_html(rows):
    """A list of dicts as an HTML table (columns: union of keys in first-seen order)."""
    if not rows:
        return mark_safe('<p class="muted">No data yet.</p>')
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    head = format_html_join("", "<th>{}</th>", ((h.replace("_", " "),) for h in header))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((_cell(r.get(h)),) for h in header)),)
            for r in rows
        ),
    )
    return format_html(
        '<table class="table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body
    )


@register.inclusion_tag("jobs/_project_analysis.html", takes_context=True)
def project_analysis(context, project):
    """The project dashboard's analysis panel: per cell its latest whole-cell pipeline and
    comparison report, per sample its report, and the most recent jobs."""
    pipelines = {}
    for job in AnalysisJob.objects.filter(project=project, kind=PIPELINE_KIND).order_by(
        "-created_at", "-id"
    ):
        pipelines.setdefault(job.cell_id, job)
    cells = [
        {"cell": cell, "pipeline": pipelines.get(cell.pk)}
        for cell in Cell.objects.filter(project=project).select_related("cathode").order_by("name")
    ]
    return {
        "project": project,
        "cells": cells,
        "samples": Sample.objects.filter(project=project).order_by("name"),
        "recent_jobs": AnalysisJob.objects.filter(project=project).order_by("-created_at", "-id")[
            :8
        ],
        "can_run": can_edit(context["request"].user, project),
    }
