from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated

from projects import throttling
from projects.api.serializers import AuditEventSerializer, MembershipSerializer, ProjectSerializer
from projects.filtersets import AuditEventFilterSet, MembershipFilterSet, ProjectFilterSet
from projects.models import AuditEvent, Membership, Project, Role
from projects.permissions import ProjectScopedQuerysetMixin, is_owner
from projects.services import owners_left_after


class ObtainTokenView(ObtainAuthToken):
    """``POST {"username": ..., "password": ...}`` answers ``{"token": KEY}``.

    Rate-limited per client address and per username, and locked after repeated failures
    (``projects.throttling``): both answer 429 with ``Retry-After``.
    """

    throttle_classes = list(throttling.LOGIN_THROTTLES)

    def throttled(self, request, wait):
        throttling.record_login_refusal(request, reason="rate limited")
        super().throttled(request, wait)

    def handle_exception(self, exc):
        if isinstance(exc, ValidationError) and getattr(self.request, "axes_locked_out", False):
            return throttling.lockout_response(self.request)
        return super().handle_exception(exc)

    @extend_schema(
        request=inline_serializer(
            "TokenRequest",
            {"username": serializers.CharField(), "password": serializers.CharField()},
        ),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class ProjectViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    """Projects you are a member of. Anyone may create one (and becomes its owner)."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilterSet
    ordering_fields = ["name", "created_at"]

    def perform_create(self, serializer):
        with transaction.atomic():
            project = serializer.save(created_by=self.request.user)
            Membership.objects.create(project=project, user=self.request.user, role=Role.OWNER)


class MembershipViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    """Members and roles. Owners add, change and remove members; a project keeps an owner."""

    queryset = Membership.objects.select_related("user", "project")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet
    ordering_fields = ["created_at", "role"]

    def _check_owner(self, project):
        from rest_framework.exceptions import PermissionDenied

        if not is_owner(self.request.user, project):
            raise PermissionDenied("Only a project owner can manage members.")

    def perform_create(self, serializer):
        self._check_owner(serializer.validated_data["project"])
        serializer.save()

    def perform_update(self, serializer):
        project = serializer.validated_data.get("project", serializer.instance.project)
        if project != serializer.instance.project:
            raise ValidationError({"project": "A membership cannot move to another project."})
        new_role = serializer.validated_data.get("role", serializer.instance.role)
        if owners_left_after(serializer.instance, new_role=new_role) == 0:
            raise ValidationError({"role": "A project must keep at least one owner."})
        serializer.save()

    def perform_destroy(self, instance):
        if owners_left_after(instance, new_role=None) == 0:
            raise ValidationError({"detail": "A project must keep at least one owner."})
        instance.delete()


class AuditEventViewSet(
    ProjectScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The audit trail of your projects: who changed what, when (read-only)."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    permission_classes = [IsAuthenticated]
    ordering_fields = ["created_at"]
