"""Project scoping and roles, shared by every app's pages and API.

The rule: a user sees only objects of projects they are a member of; anything else answers
404 (never 403, which would confirm that the object exists). Members with the ``viewer`` role
can read but not change anything (403 on writes); ``analyst`` and ``owner`` can edit; only
``owner`` manages members and deletes the project.

Models are scoped through their ``project`` foreign key. A model that reaches its project
another way sets a class attribute ``project_path`` (e.g. ``"job__project"``).
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from rest_framework import permissions

from projects import audit
from projects.models import EDIT_ROLES, Membership, Project, Role

__all__ = [
    "projects_for",
    "editable_projects_for",
    "role_in",
    "can_edit",
    "is_owner",
    "project_of",
    "scope_queryset",
    "get_for_user_or_404",
    "IsProjectMemberEditOrReadOnly",
    "ProjectScopedQuerysetMixin",
    "ProjectScopedMixin",
    "ProjectEditMixin",
]


def projects_for(user) -> models.QuerySet[Project]:
    """The projects ``user`` is a member of (any role)."""
    if user is None or not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


def editable_projects_for(user) -> models.QuerySet[Project]:
    """The projects where ``user`` is an owner or analyst."""
    return projects_for(user).filter(memberships__role__in=EDIT_ROLES)


def role_in(user, project) -> str | None:
    """``"owner"``, ``"analyst"``, ``"viewer"`` or None for a non-member."""
    if user is None or not user.is_authenticated or project is None:
        return None
    project_id = project.pk if isinstance(project, Project) else project
    cache = getattr(user, "_correli_roles", None)
    if cache is None:
        cache = user._correli_roles = {}
    if project_id not in cache:
        cache[project_id] = (
            Membership.objects.filter(user=user, project_id=project_id)
            .values_list("role", flat=True)
            .first()
        )
    return cache[project_id]


def can_edit(user, project) -> bool:
    return role_in(user, project) in EDIT_ROLES


def is_owner(user, project) -> bool:
    return role_in(user, project) == Role.OWNER


def _project_path(model: type[models.Model]) -> str:
    if issubclass(model, Project):
        return ""
    return getattr(model, "project_path", "project")


def project_of(obj) -> Project | None:
    """The project an object belongs to (the object itself for a Project)."""
    if isinstance(obj, Project):
        return obj
    target = obj
    for part in _project_path(type(obj)).split("__"):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def scope_queryset(queryset: models.QuerySet, user, project_path: str | None = None):
    """``queryset`` restricted to objects of projects ``user`` belongs to."""
    if user is None or not user.is_authenticated:
        return queryset.none()
    path = _project_path(queryset.model) if project_path is None else project_path
    member_projects = Membership.objects.filter(user=user).values("project_id")
    return queryset.filter(**{f"{path}__in" if path else "pk__in": member_projects})


def get_for_user_or_404(queryset: models.QuerySet, user, **lookup):
    """The one object matching ``lookup`` in the user's projects; Http404 otherwise."""
    try:
        return scope_queryset(queryset, user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


def check_can_edit(user, project) -> None:
    """Raise PermissionDenied (403) unless ``user`` may edit ``project``.

    Callers have already scoped the lookup, so a non-member never gets this far (404).
    """
    if not can_edit(user, project):
        raise PermissionDenied("Your role in this project is read-only (viewer).")


class IsProjectMemberEditOrReadOnly(permissions.BasePermission):
    """DRF: members read; owners and analysts write; only owners change a project or members.

    Object lookups are already scoped by ``ProjectScopedQuerysetMixin``, so non-members get
    404 before this class is asked.
    """

    message = "Your role in this project does not allow this change."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        project = project_of(obj)
        if isinstance(obj, Project | Membership):
            return is_owner(request.user, project)
        return can_edit(request.user, project)


class ProjectScopedQuerysetMixin:
    """DRF view mixin: the queryset is limited to the user's projects (others are 404).

    Set ``project_path`` on the view to override the model's path to its project. On create and
    update, the project in the validated data must be editable by the user (403 otherwise).
    """

    project_path: str | None = None
    permission_classes = [IsProjectMemberEditOrReadOnly]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Token authentication happens here, after the middleware ran: attribute changes now.
        audit.set_current_user(request.user)

    def get_queryset(self):
        return scope_queryset(super().get_queryset(), self.request.user, self.project_path)

    def check_project_editable(self, project) -> None:
        if project is not None and not can_edit(self.request.user, project):
            from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied

            raise DRFPermissionDenied("Your role in this project is read-only (viewer).")

    def perform_create(self, serializer):
        self.check_project_editable(serializer.validated_data.get("project"))
        extra = {}
        if "created_by" in {f.name for f in serializer.Meta.model._meta.fields}:
            extra["created_by"] = self.request.user
        serializer.save(**extra)

    def perform_update(self, serializer):
        self.check_project_editable(serializer.validated_data.get("project"))
        serializer.save()


class ProjectScopedMixin(LoginRequiredMixin):
    """Django CBV mixin: ``get_queryset`` limited to the user's projects (others are 404)."""

    project_path: str | None = None

    def get_queryset(self):
        return scope_queryset(super().get_queryset(), self.request.user, self.project_path)


class ProjectEditMixin(ProjectScopedMixin):
    """Django CBV mixin for update/delete views: 404 for non-members, 403 for viewers."""

    require_owner = False

    def get_object(self, queryset=None):
        obj = super().get_object(queryset)
        project = project_of(obj)
        allowed = (
            is_owner(self.request.user, project)
            if self.require_owner
            else can_edit(self.request.user, project)
        )
        if not allowed:
            raise PermissionDenied("Your role in this project does not allow this change.")
        return obj


def require_member(user, project) -> None:
    """Http404 unless ``user`` is a member of ``project``."""
    if role_in(user, project) is None:
        raise Http404("No project matches the given query.")
