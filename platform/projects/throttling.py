"""Brute-force protection for the token endpoint and the login form.

Two layers, both keyed per client address and per username:

* rate limits (DRF throttles, ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``): every attempt
  counts; past the rate the answer is 429 with ``Retry-After``;
* lockout (django-axes, ``AXES_*`` settings): after ``AXES_FAILURE_LIMIT`` failed attempts
  the username, or the address, is refused with 429 for ``AXES_COOLOFF_TIME`` even with the
  right password.

Both write an entry to the audit trail.
"""

from __future__ import annotations

import hashlib
import math

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

__all__ = [
    "LoginAddressThrottle",
    "LoginUsernameThrottle",
    "client_address",
    "submitted_username",
    "lockout_response",
    "throttled_response",
    "record_login_refusal",
]

LOGIN_TEMPLATE = "registration/login.html"


def client_address(request) -> str:
    """The client's address as the throttles and django-axes see it (``NUM_PROXIES`` aware)."""
    return BaseThrottle().get_ident(request)


def submitted_username(request) -> str:
    """The username a login attempt names ('' if none), from a form post or a JSON body."""
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    value = data.get("username", "") if hasattr(data, "get") else ""
    return value.strip().lower() if isinstance(value, str) else ""


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read at each request (DRF reads the rates once, at import), so settings overrides and
        # the environment of the running process always apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class LoginAddressThrottle(_SettingsRateThrottle):
    """Login attempts per client address."""

    scope = "login_address"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class LoginUsernameThrottle(_SettingsRateThrottle):
    """Login attempts per username, whichever address they come from."""

    scope = "login_username"

    def get_cache_key(self, request, view):
        username = submitted_username(request)
        if not username:
            return None
        digest = hashlib.sha256(username.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


LOGIN_THROTTLES = (LoginAddressThrottle, LoginUsernameThrottle)


def check_login_rate(request) -> float | None:
    """Seconds to wait if any login throttle refuses ``request``, else None (and counts it)."""
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None


def record_login_refusal(request, *, reason: str, username: str | None = None) -> None:
    """One audit entry for a refused login attempt (throttled or locked out)."""
    from projects.models import AuditEvent

    username = submitted_username(request) if username is None else (username or "")
    AuditEvent.objects.create(
        project=None,
        user=None,
        username=username[:150],
        action=AuditEvent.Action.OTHER,
        object_type="auth.login",
        object_id=username[:64],
        object_repr=f"login refused: {reason}"[:200],
        changes={"reason": reason, "address": client_address(request), "path": request.path},
    )


def _refusal(request, message: str, wait_s: float):
    retry_after = str(max(1, math.ceil(wait_s)))
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(
            request,
            LOGIN_TEMPLATE,
            {
                "form": AuthenticationForm(request),
                "refusal": message,
                "next": request.GET.get("next", ""),
            },
            status=429,
        )
    response["Retry-After"] = retry_after
    return response


def throttled_response(request, wait_s: float):
    """429 for a login attempt over the rate."""
    minutes = max(1, math.ceil(wait_s / 60))
    return _refusal(
        request,
        f"Too many login attempts; try again in {minutes} minute{'s' if minutes > 1 else ''}.",
        wait_s,
    )


def lockout_response(request, original_response=None, credentials=None):
    """django-axes ``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After`` (the cool-off time)."""
    cooloff = settings.AXES_COOLOFF_TIME
    wait_s = cooloff.total_seconds() if cooloff else 24 * 3600
    return _refusal(
        request,
        "Too many failed logins for this account or from this address; "
        f"login is locked for {max(1, math.ceil(wait_s / 60))} minutes.",
        wait_s,
    )


@receiver(user_locked_out, dispatch_uid="correli-audit-lockout")
def _audit_lockout(sender, request, username=None, ip_address=None, **kwargs):
    record_login_refusal(request, reason="locked out", username=username or "")
