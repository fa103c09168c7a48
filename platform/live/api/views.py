"""REST face of live acquisitions: create, push numbered chunks, finish, read the state."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from projects.models import Project
from projects.permissions import check_can_edit, get_for_user_or_404, scope_queryset
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis_engine.errors import EngineInputError

from .. import services, tasks
from ..models import LiveAcquisition


class LiveAcquisitionSerializer(serializers.ModelSerializer):
    missing_chunks = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = LiveAcquisition
        fields = [
            "id", "project", "name", "status", "options", "processed_seq", "events_received",
            "events_counted", "frames", "summary", "error", "spectra", "missing_chunks",
            "page_url", "created_at", "first_data_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_missing_chunks(self, obj) -> list[int]:
        return services.missing_chunks(obj)

    def get_page_url(self, obj) -> str:
        return obj.get_absolute_url()


class CreateSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    name = serializers.CharField(max_length=200)
    options = serializers.DictField(required=False)


class OctetStreamParser(BaseParser):
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read()


def _dispatch(acq_id: int) -> None:
    transaction.on_commit(lambda: tasks.process_acquisition.delay(acq_id))


class AcquisitionListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=LiveAcquisitionSerializer(many=True))
    def get(self, request):
        queryset = scope_queryset(LiveAcquisition.objects.all(), request.user)
        return Response(LiveAcquisitionSerializer(queryset[:200], many=True).data)

    @extend_schema(request=CreateSerializer, responses={201: LiveAcquisitionSerializer})
    def post(self, request):
        body = CreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = get_for_user_or_404(Project.objects.all(), request.user, pk=body.data["project"])
        check_can_edit(request.user, project)
        try:
            acq = services.create_acquisition(
                project=project, user=request.user, name=body.data["name"],
                options=body.data.get("options"),
            )  # fmt: skip
        except EngineInputError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(LiveAcquisitionSerializer(acq).data, status=201)


def _acquisition(request, pk, *, edit: bool) -> LiveAcquisition:
    acq = get_for_user_or_404(
        LiveAcquisition.objects.select_related("project"), request.user, pk=pk
    )
    if edit:
        check_can_edit(request.user, acq.project)
    return acq


class AcquisitionDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=LiveAcquisitionSerializer)
    def get(self, request, pk: int):
        return Response(LiveAcquisitionSerializer(_acquisition(request, pk, edit=False)).data)


class ChunkView(APIView):
    """``PUT .../chunks/{seq}/``: the body is one ``.npz`` event chunk (see docs/live.md)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [OctetStreamParser]

    @extend_schema(request=bytes, responses={201: dict, 200: dict, 409: dict, 400: dict})
    def put(self, request, pk: int, seq: int):
        acq = _acquisition(request, pk, edit=True)
        try:
            outcome = services.append_chunk(acq, seq, request.data or b"")
        except services.LiveConflict as exc:
            return Response({"detail": str(exc)}, status=409)
        except EngineInputError as exc:
            return Response({"detail": str(exc)}, status=400)
        if outcome.created:
            _dispatch(acq.pk)
        return Response(
            {"seq": seq, "duplicate": not outcome.created, "missing": outcome.missing},
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class FinishView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: LiveAcquisitionSerializer, 409: dict})
    def post(self, request, pk: int):
        acq = _acquisition(request, pk, edit=True)
        try:
            acq = services.finish(acq.pk)
        except services.LiveConflict as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response(LiveAcquisitionSerializer(acq).data)


class TimeResolvedView(APIView):
    """``GET .../time-resolved/?slice_s=1&regions=3[&export=csv]``: Li maps and Li(t)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict, 400: dict})
    def get(self, request, pk: int):
        acq = _acquisition(request, pk, edit=False)
        try:
            slice_s = float(request.query_params.get("slice_s", "1"))
            n_regions = int(request.query_params.get("regions", "3"))
        except ValueError:
            return Response({"detail": "slice_s must be a number and regions a whole number"}, 400)
        try:
            data = services.time_resolved(acq, slice_s=slice_s, n_regions=n_regions)
        except EngineInputError as exc:
            return Response({"detail": str(exc)}, status=400)
        if request.query_params.get("export") == "csv":
            lines = ["t_s,region,li,li_sigma"]
            for region in data["regions"]:
                for t, li, sigma in zip(data["t_s"], region["li"], region["li_sigma"], strict=True):
                    lines.append(f"{t},{region['region']},{'' if li is None else li},"
                                 f"{'' if sigma is None else sigma}")  # fmt: skip
            response = HttpResponse("\n".join(lines) + "\n", content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="live-{acq.pk}-li-of-t.csv"'
            return response
        return Response(data)
