import django_filters
from django.db.models import Q

from projects.models import AuditEvent, Membership, Project, Role


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
    project = django_filters.NumberFilter(field_name="project_id")
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["project", "role"]


class AuditEventFilterSet(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id")
    action = django_filters.ChoiceFilter(choices=AuditEvent.Action.choices)
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["project", "action", "object_type", "object_id"]
