"""The tus 1.0.0 endpoint (core + creation + termination) at ``/api/v1/uploads/``.

* ``OPTIONS /api/v1/uploads/``: capabilities (Tus-Version, Tus-Extension, Tus-Max-Size).
* ``POST /api/v1/uploads/``: create; ``Upload-Length`` and ``Upload-Metadata`` (``filename``,
  ``project``, ``dataset_kind``, ``cell``, ``charge_state``, ``beamtime``, ``region``);
  answers 201 with ``Location``.
* ``HEAD /api/v1/uploads/<id>/``: ``Upload-Offset`` and ``Upload-Length``.
* ``PATCH /api/v1/uploads/<id>/``: append (``Content-Type: application/offset+octet-stream``,
  ``Upload-Offset`` must match, else 409). The response to the last byte carries
  ``CorreLi-Dataset-Id``.
* ``DELETE /api/v1/uploads/<id>/``: terminate.
* ``GET /api/v1/uploads/`` and ``GET /api/v1/uploads/<id>/``: JSON state (not part of tus), so
  clients find the Dataset an upload became.

Uploads are private to the user who created them (others get 404); the project must be one
the user may edit (non-members 404, viewers 403).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from projects import audit
from projects.permissions import can_edit
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from uploads.api.serializers import UploadStateSerializer
from uploads.body import request_body
from uploads.models import Upload
from uploads.services import append_chunk, create_upload, terminate_upload
from uploads.tus import (
    DATASET_ID_HEADER,
    DATASET_STATUS_HEADER,
    EXPOSED_HEADERS,
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusError,
    encode_metadata,
    parse_metadata,
    parse_non_negative_int,
)

TUS_METHODS = {"POST", "HEAD", "PATCH", "DELETE"}
TUS_RESUMABLE = OpenApiParameter(
    "Tus-Resumable", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, enum=[TUS_VERSION]
)


class AuthenticatedExceptOptions(permissions.BasePermission):
    """Capabilities (OPTIONS) are public, as tus clients may ask before logging in."""

    def has_permission(self, request, view) -> bool:
        if request.method == "OPTIONS":
            return True
        return bool(request.user and request.user.is_authenticated)


class TusView(APIView):
    permission_classes = [AuthenticatedExceptOptions]
    # Never let DRF parse a body: PATCH bodies are streamed to disk by the service.
    parser_classes: list = []

    def dispatch(self, request, *args, **kwargs):
        # tus lets clients behind proxies that only pass GET/POST tunnel the real method.
        override = request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if request.method == "POST" and override in {"PATCH", "DELETE", "HEAD"}:
            request.method = override
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        audit.set_current_user(request.user)
        if request.method in TUS_METHODS:
            version = request.META.get("HTTP_TUS_RESUMABLE")
            if version != TUS_VERSION:
                raise TusError(
                    412, f"Tus-Resumable {version!r} is not supported; use {TUS_VERSION}."
                )

    def handle_exception(self, exc):
        if isinstance(exc, TusError):
            response = Response({"detail": exc.message}, status=exc.status)
            if exc.status == 412:
                response["Tus-Version"] = TUS_VERSION
            if exc.status == 413:
                response["Tus-Max-Size"] = str(settings.CORRELI_UPLOAD_MAX_BYTES)
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        summary="tus capabilities",
        responses={204: OpenApiResponse(description="Tus-Version, Tus-Extension, Tus-Max-Size")},
    )
    def options(self, request, *args, **kwargs):
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(settings.CORRELI_UPLOAD_MAX_BYTES)
        return response


def _state_headers(response: Response, upload: Upload) -> Response:
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.length)
    if upload.dataset_id is not None:
        response[DATASET_ID_HEADER] = str(upload.dataset_id)
        response[DATASET_STATUS_HEADER] = str(upload.dataset.status)
    return response


class UploadCollectionView(TusView):
    @extend_schema(
        summary="Your uploads (unfinished and finished)",
        responses=UploadStateSerializer(many=True),
    )
    def get(self, request):
        uploads = _uploads_of(request.user).select_related("dataset")[:200]
        return Response(UploadStateSerializer(uploads, many=True).data)

    @extend_schema(
        summary="Create an upload (tus creation)",
        parameters=[
            TUS_RESUMABLE,
            OpenApiParameter("Upload-Length", OpenApiTypes.INT, OpenApiParameter.HEADER, True),
            OpenApiParameter(
                "Upload-Metadata",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                True,
                description="key base64(value) pairs: filename, project, dataset_kind, cell, "
                "charge_state, beamtime, region",
            ),
        ],
        request=None,
        responses={201: OpenApiResponse(description="Location: the upload URL")},
    )
    def post(self, request):
        if request.META.get("HTTP_UPLOAD_DEFER_LENGTH"):
            raise TusError(400, "Upload-Defer-Length is not supported: send Upload-Length.")
        length = parse_non_negative_int(request.META.get("HTTP_UPLOAD_LENGTH"), "Upload-Length")
        metadata = parse_metadata(request.META.get("HTTP_UPLOAD_METADATA"))
        upload = create_upload(request.user, length=length, metadata=metadata)
        response = Response(status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(
            f"{request.path.rstrip('/')}/{upload.pk}/"
        )
        return _state_headers(response, upload)


def _uploads_of(user):
    # Only the uploader's own, and only while still a member of the project.
    return Upload.objects.filter(created_by=user, project__memberships__user=user)


class UploadDetailView(TusView):
    def get_upload(self, request, pk) -> Upload:
        try:
            return _uploads_of(request.user).select_related("dataset").get(pk=pk)
        except Upload.DoesNotExist:
            raise Http404("No upload matches the given query.") from None

    @extend_schema(summary="Upload state as JSON", responses=UploadStateSerializer)
    def get(self, request, pk):
        return Response(UploadStateSerializer(self.get_upload(request, pk)).data)

    @extend_schema(
        summary="Offset of an upload (tus HEAD)",
        parameters=[TUS_RESUMABLE],
        responses={200: OpenApiResponse(description="Upload-Offset, Upload-Length")},
    )
    def head(self, request, pk):
        upload = self.get_upload(request, pk)
        response = _state_headers(Response(status=status.HTTP_200_OK), upload)
        if upload.metadata:
            response["Upload-Metadata"] = encode_metadata(upload.metadata)
        return response

    @extend_schema(
        summary="Append bytes (tus PATCH)",
        parameters=[
            TUS_RESUMABLE,
            OpenApiParameter("Upload-Offset", OpenApiTypes.INT, OpenApiParameter.HEADER, True),
        ],
        request={OFFSET_CONTENT_TYPE: OpenApiTypes.BINARY},
        responses={204: OpenApiResponse(description="Upload-Offset; CorreLi-Dataset-Id when done")},
    )
    def patch(self, request, pk):
        upload = self.get_upload(request, pk)
        if not can_edit(request.user, upload.project_id):
            raise TusError(
                403, "Your role in this project is read-only (viewer): you cannot upload."
            )
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != OFFSET_CONTENT_TYPE:
            raise TusError(415, f"PATCH bodies must have Content-Type {OFFSET_CONTENT_TYPE}.")
        offset = parse_non_negative_int(request.META.get("HTTP_UPLOAD_OFFSET"), "Upload-Offset")
        length_header = request.META.get("CONTENT_LENGTH")
        if not length_header:
            raise TusError(411, "PATCH requests need a Content-Length header.")
        content_length = parse_non_negative_int(length_header, "Content-Length")
        body = request_body(request, content_length)
        upload = append_chunk(upload, body, offset=offset, content_length=content_length)
        return _state_headers(Response(status=status.HTTP_204_NO_CONTENT), upload)

    @extend_schema(
        summary="Terminate an upload (tus termination)",
        parameters=[TUS_RESUMABLE],
        responses={204: None},
    )
    def delete(self, request, pk):
        terminate_upload(self.get_upload(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
