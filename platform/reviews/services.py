"""Creating, resolving and revoking review links; every use goes to the audit trail."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from catalogue.models import Cell, Sample
from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from jobs.models import Result
from projects import audit
from projects.permissions import is_owner
from projects.throttling import client_address

from reviews.models import DOWNLOADS, SIGNING_SALT, ReviewLink, ReviewTarget

__all__ = ["ReviewLinkError", "create_link", "resolve", "record_use", "revoke"]

DEFAULT_DAYS = 14
NOT_FOUND = "This review link does not exist, has expired or was revoked."


class ReviewLinkError(ValueError):
    """A review link request the owner must correct (400)."""


def _target_of(obj) -> str:
    for model, target in (
        (Result, ReviewTarget.RESULT),
        (Cell, ReviewTarget.CELL_REPORT),
        (Sample, ReviewTarget.SAMPLE_REPORT),
    ):
        if isinstance(obj, model):
            return target
    raise ReviewLinkError(f"A review link shows a result or a report, not a {type(obj).__name__}.")


def create_link(
    user,
    obj,
    *,
    downloads: list[str] | tuple[str, ...] = (),
    expires_at: datetime | None = None,
    note: str = "",
) -> ReviewLink:
    """A new review link to ``obj`` (a Result, or a Cell/Sample for its comparison report).

    Raises
    ------
    django.core.exceptions.PermissionDenied
        ``user`` is not an owner of the object's project (callers have already scoped the
        lookup, so non-members never get this far).
    ReviewLinkError
        An unknown download, or an expiry in the past or beyond the allowed maximum.
    """
    target = _target_of(obj)
    if not is_owner(user, obj.project_id):
        raise PermissionDenied("Only a project owner can create review links.")
    allowed = DOWNLOADS[target]
    unknown = sorted(set(downloads) - set(allowed))
    if unknown:
        raise ReviewLinkError(
            f"Unknown download {', '.join(unknown)} for a {ReviewTarget(target).label.lower()}; "
            f"choose from {', '.join(allowed)}."
        )
    now = timezone.now()
    max_days = settings.CORRELI_REVIEW_LINK_MAX_DAYS
    if expires_at is None:
        expires_at = now + timedelta(days=min(DEFAULT_DAYS, max_days))
    if expires_at <= now:
        raise ReviewLinkError("The expiry must be in the future.")
    if expires_at > now + timedelta(days=max_days):
        raise ReviewLinkError(f"A review link may last at most {max_days} days.")
    field = {"result": "result", "cell_report": "cell", "sample_report": "sample"}[target]
    with audit.acting_user(user):
        return ReviewLink.objects.create(
            project_id=obj.project_id,
            target=target,
            downloads=sorted(set(downloads)),
            note=note[:200],
            expires_at=expires_at,
            created_by=user,
            **{field: obj},
        )


def resolve(token: str, request, *, event: str) -> ReviewLink:
    """The active link ``token`` names, its use recorded; Http404 for anything else.

    A token that verifies but whose link expired or was revoked is recorded too (as refused).
    """
    try:
        payload = signing.Signer(salt=SIGNING_SALT).unsign_object(token)
        link_id, nonce = int(payload["id"]), str(payload["nonce"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404(NOT_FOUND) from None
    link = (
        ReviewLink.objects.select_related("project", "result", "cell", "sample")
        .filter(pk=link_id)
        .first()
    )
    if link is None or not _same(link.nonce, nonce):
        raise Http404(NOT_FOUND)
    if not link.is_active:
        record_use(link, request, event=f"refused ({link.state}): {event}")
        raise Http404(NOT_FOUND)
    record_use(link, request, event=event)
    return link


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def record_use(link: ReviewLink, request, *, event: str) -> None:
    """One audit entry per use: what was opened or downloaded, from where, when."""
    now = timezone.now()
    if not event.startswith("refused"):
        ReviewLink.objects.filter(pk=link.pk).update(uses=F("uses") + 1, last_used_at=now)
    audit.record(
        link,
        "other",
        {
            "event": event,
            "address": client_address(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
            "note": link.note,
        },
        user=request.user if request.user.is_authenticated else None,
    )


def revoke(link: ReviewLink, user) -> ReviewLink:
    """Revoke ``link`` (idempotent); only an owner of its project may."""
    if not is_owner(user, link.project_id):
        raise PermissionDenied("Only a project owner can revoke review links.")
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        with audit.acting_user(user):
            link.save(update_fields=["revoked_at"])
    return link
