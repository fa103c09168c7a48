import django_filters
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from projects.filtersets import IdFilter
from projects.models import Role
from projects.permissions import ProjectScopedQuerysetMixin
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from reviews import services
from reviews.api.serializers import ReviewLinkSerializer
from reviews.models import ReviewLink, ReviewTarget


class ReviewLinkFilterSet(django_filters.FilterSet):
    # plain ids, not model choices: an id of another project must not answer differently
    # from an id that does not exist
    project = IdFilter(field_name="project_id")
    target = django_filters.ChoiceFilter(choices=ReviewTarget.choices)
    result = IdFilter(field_name="result_id")
    cell = IdFilter(field_name="cell_id")
    sample = IdFilter(field_name="sample_id")

    class Meta:
        model = ReviewLink
        fields = ["project", "target", "result", "cell", "sample"]


class ReviewLinkViewSet(
    ProjectScopedQuerysetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Review links for referees (project owners only; other members see none).

    ``POST`` creates a signed, expiring link to one result or report; ``POST .../revoke/``
    ends it at once; ``DELETE`` removes it. An expired, revoked or removed link answers 404.
    """

    queryset = ReviewLink.objects.select_related("created_by")
    serializer_class = ReviewLinkSerializer
    ordering_fields = ["created_at", "expires_at"]
    filterset_class = ReviewLinkFilterSet

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(
                project__memberships__user=self.request.user,
                project__memberships__role=Role.OWNER,
            )
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.create_link(
                self.request.user,
                data["target_object"],
                downloads=data.get("downloads", []),
                expires_at=data.get("expires_at"),
                note=data.get("note", ""),
            )
        except services.ReviewLinkError as exc:
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc

    @extend_schema(request=None, responses=ReviewLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """End the link now (idempotent)."""
        link = services.revoke(self.get_object(), request.user)
        return Response(self.get_serializer(link).data, status=status.HTTP_200_OK)
