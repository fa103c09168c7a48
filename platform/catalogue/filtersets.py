"""Filters shared by the catalogue list pages and the API (same names in both)."""

import django_filters
from django.db.models import Q
from projects.permissions import projects_for, scope_queryset

from catalogue.models import (
    Beamtime,
    Cell,
    ChargeState,
    ChargeStateKind,
    Dataset,
    DatasetKind,
    DatasetStatus,
    FabricationMethod,
    Sample,
)


def _user(request):
    return getattr(request, "user", None)


def _scoped(model):
    def queryset(request):
        return scope_queryset(model.objects.all(), _user(request))

    return queryset


def _projects(request):
    return projects_for(_user(request))


class SearchFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    project = django_filters.ModelChoiceFilter(queryset=_projects)
    search_fields: tuple[str, ...] = ()

    def search(self, queryset, name, value):
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return queryset.filter(condition)


class SampleFilterSet(SearchFilterSet):
    material = django_filters.CharFilter(lookup_expr="iexact")
    fabrication_method = django_filters.ChoiceFilter(choices=FabricationMethod.choices)
    search_fields = ("name", "material", "composition", "notes")

    class Meta:
        model = Sample
        fields = ["q", "project", "material", "fabrication_method"]


class CellFilterSet(SearchFilterSet):
    cathode = django_filters.ModelChoiceFilter(queryset=_scoped(Sample))
    material = django_filters.CharFilter(field_name="cathode__material", lookup_expr="iexact")
    fabrication_method = django_filters.ChoiceFilter(
        field_name="cathode__fabrication_method", choices=FabricationMethod.choices
    )
    search_fields = ("name", "format", "electrolyte", "cathode__name", "notes")

    class Meta:
        model = Cell
        fields = ["q", "project", "cathode", "material", "fabrication_method", "format"]


class ChargeStateFilterSet(SearchFilterSet):
    cell = django_filters.ModelChoiceFilter(queryset=_scoped(Cell))
    state = django_filters.ChoiceFilter(choices=ChargeStateKind.choices)
    material = django_filters.CharFilter(field_name="cell__cathode__material", lookup_expr="iexact")
    fabrication_method = django_filters.ChoiceFilter(
        field_name="cell__cathode__fabrication_method", choices=FabricationMethod.choices
    )
    search_fields = ("cell__name", "notes")

    class Meta:
        model = ChargeState
        fields = ["q", "project", "cell", "state", "cycle_number", "material", "fabrication_method"]


class BeamtimeFilterSet(SearchFilterSet):
    facility = django_filters.CharFilter(lookup_expr="icontains")
    beamline = django_filters.CharFilter(lookup_expr="iexact")
    search_fields = ("facility", "beamline", "proposal", "detector", "notes")

    class Meta:
        model = Beamtime
        fields = ["q", "project", "facility", "beamline"]


class DatasetFilterSet(SearchFilterSet):
    kind = django_filters.ChoiceFilter(choices=DatasetKind.choices)
    status = django_filters.ChoiceFilter(choices=DatasetStatus.choices)
    cell = django_filters.ModelChoiceFilter(queryset=_scoped(Cell))
    charge_state = django_filters.ModelChoiceFilter(queryset=_scoped(ChargeState))
    beamtime = django_filters.ModelChoiceFilter(queryset=_scoped(Beamtime))
    state = django_filters.ChoiceFilter(
        field_name="charge_state__state", choices=ChargeStateKind.choices
    )
    material = django_filters.CharFilter(field_name="cell__cathode__material", lookup_expr="iexact")
    fabrication_method = django_filters.ChoiceFilter(
        field_name="cell__cathode__fabrication_method", choices=FabricationMethod.choices
    )
    region = django_filters.NumberFilter()
    sha256 = django_filters.CharFilter()
    search_fields = ("name", "notes", "sha256")

    class Meta:
        model = Dataset
        fields = [
            "q",
            "project",
            "kind",
            "status",
            "cell",
            "charge_state",
            "beamtime",
            "state",
            "material",
            "fabrication_method",
            "region",
            "sha256",
        ]
