"""Viewer pages and their slice endpoints.

Slices answer raw little-endian pixels (``application/octet-stream``) with the shape, dtype,
downsampling step and an automatic contrast window in ``X-*`` headers, so a 512^2 view is 1 MB
instead of a JSON list several times larger. Bad parameters answer 400 with a one-line JSON
``detail``; objects outside the user's projects answer 404.
"""

from __future__ import annotations

from catalogue.models import Dataset
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from jobs.models import Result
from projects.permissions import get_for_user_or_404

from analysis_engine.errors import EngineError

from . import previews, services, thumbnails
from .sources import source_for_dataset, source_for_result


def _object(request, scope: str, pk: int):
    if scope == "results":
        return get_for_user_or_404(
            Result.objects.select_related("project", "job"), request.user, pk=pk
        )
    return get_for_user_or_404(Dataset.objects.select_related("project"), request.user, pk=pk)


def _source(obj):
    return source_for_result(obj) if isinstance(obj, Result) else source_for_dataset(obj)


def _bad(exc: Exception) -> JsonResponse:
    return JsonResponse({"detail": str(exc)}, status=400)


@login_required
@require_GET
def page(request, scope: str, pk: int):
    obj = _object(request, scope, pk)
    try:
        meta, error = _source(obj).meta(), ""
    except (EngineError, OSError) as exc:
        meta, error = None, str(exc)
    return render(
        request,
        "viewer/viewer.html",
        {"object": obj, "scope": scope, "meta": meta, "error": error},
        status=200,
    )


@login_required
@require_GET
def meta(request, scope: str, pk: int):
    obj = _object(request, scope, pk)
    try:
        return JsonResponse(_source(obj).meta())
    except (EngineError, OSError) as exc:
        return _bad(exc)


@login_required
@require_GET
def slice_view(request, scope: str, pk: int):
    obj = _object(request, scope, pk)
    q = request.GET
    try:
        plane = services.read_view(
            _source(obj),
            layer=q.get("layer", "grey"),
            axis=q.get("axis", "0"),
            index=q.get("index", "0"),
            max_pixels=q.get("max", services.DEFAULT_VIEW_PIXELS),
            window=services.parse_window(q.get("window")),
        )
    except (EngineError, OSError) as exc:
        return _bad(exc)
    response = HttpResponse(
        plane.data.astype(plane.data.dtype.newbyteorder("<")).tobytes(),
        content_type="application/octet-stream",
    )
    for k, v in plane.headers().items():
        response[k] = v
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_GET
def cor(request, scope: str, pk: int):
    obj = _object(request, scope, pk)
    q = request.GET
    try:
        images, centres = services.cor_preview(
            _source(obj),
            row=q.get("row", "0"),
            count=q.get("count", "5"),
            spacing_px=q.get("spacing", "2"),
            center=q.get("center"),
        )
    except (EngineError, OSError) as exc:
        return _bad(exc)
    response = HttpResponse(images.astype("<f4").tobytes(), content_type="application/octet-stream")
    response["X-Shape"] = ",".join(str(s) for s in images.shape)
    response["X-Centers"] = ",".join(f"{c:.2f}" for c in centres)
    return response


@login_required
@require_GET
def dataset_preview(request, pk: int):
    """Plotly figures and a facts table for a dataset (computed once, then cached)."""
    dataset = get_for_user_or_404(Dataset.objects.select_related("project"), request.user, pk=pk)
    try:
        return JsonResponse(previews.preview_for_dataset(dataset))
    except (EngineError, OSError, ValueError) as exc:
        return JsonResponse(
            {"detail": f"No preview: the file could not be read ({exc})"}, status=422
        )


@login_required
@require_GET
def thumbnail(request, pk: int, name: str):
    """A small PNG of a result's Li or porosity map; 404 when the map or its file is gone."""
    result = get_for_user_or_404(Result.objects.select_related("project"), request.user, pk=pk)
    try:
        png = thumbnails.thumbnail_png(result, name)
    except (EngineError, OSError) as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=600"
    return response
