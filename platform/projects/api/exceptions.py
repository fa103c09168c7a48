"""API error mapping: bad engine input is a 400, a protected delete is a 409 with a reason."""

from django.db.models import ProtectedError, RestrictedError
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
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response({"detail": protected_message(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, EngineInputError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
