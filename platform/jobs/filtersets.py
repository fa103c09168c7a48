"""Filters shared by the job/result list pages and the API."""

import django_filters

from .models import AnalysisJob, JobStatus, Result


class NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    pass


class AnalysisJobFilterSet(django_filters.FilterSet):
    ids = NumberInFilter(field_name="id", lookup_expr="in", label="Job ids (comma-separated)")
    project = django_filters.NumberFilter(field_name="project_id")
    kind = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    cell = django_filters.NumberFilter(field_name="cell_id")
    parent = django_filters.NumberFilter(field_name="parent_id")
    top_level = django_filters.BooleanFilter(
        field_name="parent", lookup_expr="isnull", label="Top-level jobs only"
    )
    dataset = django_filters.NumberFilter(field_name="inputs", distinct=True)

    class Meta:
        model = AnalysisJob
        fields = ["ids", "project", "kind", "status", "cell", "parent", "top_level", "dataset"]


class ResultFilterSet(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id")
    kind = django_filters.CharFilter()
    job = django_filters.NumberFilter(field_name="job_id")
    cell = django_filters.NumberFilter(field_name="cell_id")
    charge_state = django_filters.NumberFilter(field_name="charge_state_id")
    region = django_filters.NumberFilter()

    class Meta:
        model = Result
        fields = ["project", "kind", "job", "cell", "charge_state", "region"]
