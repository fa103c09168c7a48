from django.http import Http404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from projects import store
from projects.api.parsers import (
    NulRefusingFormParser,
    NulRefusingJSONParser,
    NulRefusingMultiPartParser,
)
from projects.models import Membership
from projects.permissions import ProjectScopedQuerysetMixin
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalogue.api import cache as list_cache
from catalogue.api.serializers import (
    DATASET_LIST_COLUMNS,
    BeamtimeSerializer,
    CellSerializer,
    ChargeStateSerializer,
    DatasetSerializer,
    SampleSerializer,
    dataset_list_rows,
)
from catalogue.filtersets import (
    BeamtimeFilterSet,
    CellFilterSet,
    ChargeStateFilterSet,
    DatasetFilterSet,
    SampleFilterSet,
)
from catalogue.models import Beamtime, Cell, ChargeState, Dataset, DatasetStatus, Sample
from catalogue.services import validate_dataset_file


class SampleViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    """Electrodes. Deleting one that cells are built from answers 409."""

    queryset = Sample.objects.all()
    serializer_class = SampleSerializer
    filterset_class = SampleFilterSet
    ordering_fields = ["name", "material", "thickness_um", "created_at"]


class CellViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    """Coin cells. Deleting one with charge states or datasets answers 409."""

    queryset = Cell.objects.select_related("cathode")
    serializer_class = CellSerializer
    filterset_class = CellFilterSet
    ordering_fields = ["name", "assembly_date", "created_at"]


class ChargeStateViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = ChargeState.objects.select_related("cell")
    serializer_class = ChargeStateSerializer
    filterset_class = ChargeStateFilterSet
    ordering_fields = ["cycle_number", "recorded_at", "created_at"]


class BeamtimeViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = Beamtime.objects.all()
    serializer_class = BeamtimeSerializer
    filterset_class = BeamtimeFilterSet
    ordering_fields = ["start_date", "facility", "created_at"]


class DatasetViewSet(ProjectScopedQuerysetMixin, viewsets.ModelViewSet):
    """Data files with their checksum, format status and catalogue links."""

    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilterSet
    parser_classes = [NulRefusingJSONParser, NulRefusingMultiPartParser, NulRefusingFormParser]
    ordering_fields = ["created_at", "name", "size", "kind"]

    def filter_queryset(self, queryset):
        # Building the filterset's form (with its scoped choice querysets) costs more than the
        # rest of a list request; with no filter parameter it would not change the queryset.
        if self.request.query_params.keys() & self.filterset_class.base_filters.keys():
            return super().filter_queryset(queryset)
        for backend in self.filter_backends:
            if not issubclass(backend, DjangoFilterBackend):
                queryset = backend().filter_queryset(self.request, queryset, self)
        return queryset

    def list(self, request, *args, **kwargs):
        """Served from the page cache (``catalogue.api.cache``) while the data it was built
        from is unchanged."""
        if not list_cache.enabled():
            return self._list_response(request)
        project_ids = list(
            Membership.objects.filter(user_id=request.user.pk)
            .order_by("project_id")
            .values_list("project_id", flat=True)
        )
        key = list_cache.page_key(request)
        versions, data = list_cache.lookup(key, project_ids)
        if data is not None:
            return Response(data)
        response = self._list_response(request)
        if response.status_code == 200:
            list_cache.store(key, versions, response.data)
        return response

    def _list_response(self, request):
        """The lean read path: the page's columns as dicts, no model instances and no
        per-row field objects; the JSON equals ``DatasetSerializer(many=True)``'s."""
        queryset = self.filter_queryset(self.get_queryset()).values(*DATASET_LIST_COLUMNS)
        page = self.paginate_queryset(queryset)
        rows = page if page is not None else list(queryset)
        # One reverse() and absolute URI per page; each row's pk is spliced in.
        url = request.build_absolute_uri(reverse("dataset-download", args=["PK"]))
        prefix, suffix = url.rsplit("PK", 1)
        data = dataset_list_rows(rows, prefix, suffix)
        if page is None:
            return Response(data)
        return self.get_paginated_response(data)

    def perform_create(self, serializer):
        self.check_project_editable(serializer.validated_data.get("project"))
        upload = serializer.validated_data.get("file")
        extra = {"created_by": self.request.user}
        if upload is not None:
            extra["status"] = DatasetStatus.VALIDATING
            if not serializer.validated_data.get("name"):
                extra["name"] = upload.name
        dataset = serializer.save(**extra)
        if upload is not None:
            validate_dataset_file(dataset)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The stored file (404 for datasets outside your projects or without a file)."""
        dataset = self.get_object()
        if not dataset.file:
            raise Http404("This dataset has no stored file.")
        return store.download_response(dataset.file)
