import django_filters
from django import forms
from django.db.models import Q

from projects.models import AuditEvent, Membership, Project, Role

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number in the range of a 64-bit key (anything else is a 400)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class ProjectFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    role = django_filters.ChoiceFilter(choices=Role.choices, method="filter_role", label="My role")

    class Meta:
        model = Project
        fields = ["q", "role"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))

    def filter_role(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        return queryset.filter(memberships__user=user, memberships__role=value)


class MembershipFilterSet(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["project", "role"]


class AuditEventFilterSet(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    action = django_filters.ChoiceFilter(choices=AuditEvent.Action.choices)
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["project", "action", "object_type", "object_id"]
