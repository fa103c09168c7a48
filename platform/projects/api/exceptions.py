"""API error mapping: bad engine input is a 400, a protected delete is a 409 with a reason."""

from django.db import DataError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from analysis_engine.errors import EngineInputError


def protected_message(exc: ProtectedError | RestrictedError) -> str:
    linked = getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", ())
    counts: dict[str, int] = {}
    for obj in linked:
        name = str(obj._meta.verbose_name_plural)
        counts[name] = counts.get(name, 0) + 1
    listed = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return f"Cannot delete: still referenced by {listed}. Delete or re-link those first."


def exception_handler(exc, context):
    if isinstance(exc, OverflowError) or (
        isinstance(exc, DataError) and "out of range" in str(exc)
    ):
        # A number the database cannot hold (a filter or id of 30 digits); the query was
        # never going to match anything, and the client sent it.
        return Response(
            {"detail": "A number in the request is out of range."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response({"detail": protected_message(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, EngineInputError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    """``handler404``: API paths answer JSON like the API's own 404s, pages answer HTML."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """``handler500``: API paths answer JSON (a client expects it), pages answer HTML."""
    if _is_api(request):
        return JsonResponse(
            {"detail": "Server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return defaults.server_error(request)
