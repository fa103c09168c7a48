"""Audit trail: every create, update and delete of a registered model becomes an AuditEvent.

Who made the change is taken from a context variable that ``AuditUserMiddleware`` (pages,
session API calls) and ``ProjectScopedQuerysetMixin.initial`` (token-authenticated API calls)
set; changes made by workers or management commands are recorded with no user. Other apps
register their models with ``projects.audit.register(Model)`` in ``AppConfig.ready``.
"""

from __future__ import annotations

import contextvars
import json
from contextlib import contextmanager

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

__all__ = [
    "register",
    "record",
    "acting_user",
    "current_user",
    "set_current_user",
    "AuditUserMiddleware",
]

_current_user = contextvars.ContextVar("correli_audit_user", default=None)
_registered: set[type[models.Model]] = set()
IGNORED_FIELDS = {"updated_at", "created_at"}


def current_user():
    """The user changes are being attributed to right now (None: a worker or command)."""
    return _current_user.get()


def set_current_user(user) -> None:
    _current_user.set(user if user is not None and user.is_authenticated else None)


@contextmanager
def acting_user(user):
    """Attribute changes made inside the block to ``user`` (services, commands, tests)."""
    token = _current_user.set(user)
    try:
        yield
    finally:
        _current_user.reset(token)


class AuditUserMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_user.set(None)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            _current_user.set(user)
        try:
            return self.get_response(request)
        finally:
            _current_user.reset(token)


def _jsonable(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def _snapshot(instance: models.Model) -> dict:
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name in IGNORED_FIELDS:
            continue
        value = field.value_from_object(instance)
        if isinstance(field, models.FileField):
            value = value.name if value else ""
        values[field.attname] = _jsonable(value)
    return values


def _project_id(instance: models.Model):
    from projects.models import Project

    if isinstance(instance, Project):
        return instance.pk
    return getattr(instance, "project_id", None)


def record(instance: models.Model, action: str, changes: dict | None = None, user=None):
    """Write one AuditEvent for ``instance`` (also usable for custom actions, e.g. 'other')."""
    from projects.models import AuditEvent

    user = user if user is not None else _current_user.get()
    return AuditEvent.objects.create(
        project_id=_project_id(instance),
        user=user,
        username=getattr(user, "username", "") or "",
        action=action,
        object_type=instance._meta.label_lower,
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        changes=changes or {},
    )


def _pre_save(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    old = sender._default_manager.filter(pk=instance.pk).first()
    instance._audit_before = _snapshot(old) if old is not None else None


def _post_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    after = _snapshot(instance)
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        record(instance, "create", {k: [None, v] for k, v in after.items() if v not in (None, "")})
        return
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if changes:
        record(instance, "update", changes)


def _post_delete(sender, instance, **kwargs):
    record(instance, "delete", {})


def register(model: type[models.Model]) -> None:
    """Record creates, updates and deletes of ``model`` in the audit trail."""
    if model in _registered:
        return
    _registered.add(model)
    uid = f"correli-audit-{model._meta.label_lower}"
    pre_save.connect(_pre_save, sender=model, dispatch_uid=uid + "-pre")
    post_save.connect(_post_save, sender=model, dispatch_uid=uid + "-post")
    post_delete.connect(_post_delete, sender=model, dispatch_uid=uid + "-del")
