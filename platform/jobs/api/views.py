from __future__ import annotations

import json

from django.core.cache import cache
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from projects import store
from projects.permissions import ProjectScopedQuerysetMixin, can_edit, scope_queryset
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from analysis_engine.errors import EngineInputError
from jobs import dispatch, execution, references
from jobs import engine_registry as registry
from jobs.api.serializers import (
    AnalysisJobSerializer,
    CommentSerializer,
    JobCreateSerializer,
    JobKindSerializer,
    ResultListSerializer,
    ResultSerializer,
)
from jobs.filtersets import AnalysisJobFilterSet, ResultFilterSet
from jobs.models import AnalysisJob, Comment, Result

READ_ONLY = "Your role in this project is read-only (viewer): you cannot run or cancel jobs."


class AnalysisJobViewSet(
    ProjectScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Analysis jobs. ``POST`` starts one (202 + the job); poll ``GET`` for progress."""

    queryset = (
        AnalysisJob.objects.select_related("created_by")
        .prefetch_related("results", "inputs", "input_results")
        .all()
    )
    serializer_class = AnalysisJobSerializer
    filterset_class = AnalysisJobFilterSet
    ordering_fields = ["created_at", "status", "kind"]

    @extend_schema(
        request=JobCreateSerializer,
        responses={
            202: AnalysisJobSerializer,
            200: OpenApiResponse(AnalysisJobSerializer, "The same job already exists"),
        },
        description=(
            "Start a job: ``{kind, inputs: [dataset ids], parameters}`` or, for a whole cell, "
            "``{kind: 'pipeline', cell}``. The same kind, inputs and parameters return the "
            "existing job (200) unless ``force`` is true; a new job answers 202."
        ),
    )
    def create(self, request, *args, **kwargs):
        payload = JobCreateSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        project = data["project"]
        if not can_edit(request.user, project):
            raise PermissionDenied(READ_ONLY)
        try:
            job, created = self._submit(request, data, project)
        except references.ReferenceNotFound as exc:
            raise NotFound(str(exc)) from None
        body = AnalysisJobSerializer(job, context={"request": request}).data
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        # str(): DRF's Hyperlink is a str subclass that WSGI servers refuse in a header
        return Response(body, status=code, headers={"Location": str(body["url"])})

    def _submit(self, request, data, project):
        if data["kind"] == registry.PIPELINE_KIND:
            return dispatch.submit_pipeline(
                project=project,
                user=request.user,
                cell=data["cell"],
                parameters=data.get("parameters"),
                force=data["force"],
            )
        return dispatch.submit_job(
            project=project,
            user=request.user,
            kind=data["kind"],
            datasets=data.get("inputs", []),
            input_results=data.get("input_results", []),
            parameters=data.get("parameters"),
            force=data["force"],
        )

    @extend_schema(request=None, responses=AnalysisJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):
        """Cancel a queued or running job (and a pipeline's unfinished stages)."""
        job = self.get_object()
        if not can_edit(request.user, job.project):
            raise PermissionDenied(READ_ONLY)
        dispatch.cancel_job(job)
        return Response(AnalysisJobSerializer(job, context={"request": request}).data)

    @extend_schema(responses=JobKindSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def kinds(self, request, format=None):
        """The job kinds, their inputs and engine options with defaults."""
        return Response(registry.submittable_kinds())


class ResultViewSet(
    ProjectScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Results: summary JSON, files, provenance and Plotly figures."""

    queryset = Result.objects.all()
    filterset_class = ResultFilterSet
    ordering_fields = ["created_at", "kind"]

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "list":
            qs = qs.defer("figures", "provenance")
        return qs

    def get_serializer_class(self):
        return ResultListSerializer if self.action == "list" else ResultSerializer

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if self.action == "list":
            child = getattr(serializer, "child", serializer)
            child.fields.pop("figure_names", None)
        return serializer

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="Which figure (default: the main one)")
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def figure(self, request, pk=None, format=None):
        """Plotly figure JSON (``{"data": [...], "layout": {...}}``)."""
        result = self._scoped_result(pk, fields=("id", "project_id"))
        name = request.query_params.get("name", "")
        key = f"jobs:figure:{result.pk}:{name}"
        body = cache.get(key)
        if body is None:
            figures = Result.objects.filter(pk=result.pk).values_list("figures", flat=True)[0]
            if not figures:
                raise Http404("This result has no figure.")
            if name and name not in figures:
                raise Http404(f"No figure {name!r}; this result has {', '.join(figures)}.")
            body = json.dumps(figures[name or next(iter(figures))], separators=(",", ":"))
            cache.set(key, body, 600)
        return HttpResponse(body, content_type="application/json")

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None, format=None):
        """The HDF5 output file (permission-checked)."""
        result = self.get_object()
        if not result.output_file:
            raise Http404("This result has no output file.")
        return store.download_response(result.output_file)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(
        detail=True,
        methods=["get"],
        url_path=r"export/(?P<fmt>nxs|hxt|tif|csv)",
        url_name="export",
    )
    def export(self, request, pk=None, fmt=None, format=None):
        """The output file converted: NeXus NXdata (nxs), HEXITEC .hxt, TIFF or CSV."""
        result = self.get_object()
        try:
            name, filename = execution.export_result_file(result, fmt)
        except EngineInputError as exc:
            raise Http404(str(exc)) from None
        return store.download_response(name, filename=filename)

    @extend_schema(methods=["GET"], responses=CommentSerializer(many=True))
    @extend_schema(methods=["POST"], request=CommentSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"], permission_classes=[IsAuthenticated])
    def comments(self, request, pk=None, format=None):
        """Comments on a result. Every project member, viewers included, may comment."""
        result = self._scoped_result(pk, fields=("id", "project_id"))
        if request.method == "POST":
            serializer = CommentSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            comment = serializer.save(
                result=result, project_id=result.project_id, author=request.user
            )
            return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        qs = Comment.objects.filter(result=result).select_related("author")
        page = self.paginate_queryset(qs)  # paginated like every list of the API
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    def _scoped_result(self, pk, *, fields):
        # one query: the result, only if it is in one of the user's projects
        try:
            return scope_queryset(Result.objects.only(*fields), self.request.user).get(pk=pk)
        except (Result.DoesNotExist, ValueError, TypeError):
            raise Http404("No result matches the given query.") from None
