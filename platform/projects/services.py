"""ORM orchestration for projects: creating one with its owner, managing members."""

from django.db import transaction

from projects.models import Membership, Project, Role


@transaction.atomic
def create_project(*, user, name: str, description: str = "") -> Project:
    """Create a project owned by ``user``."""
    project = Project.objects.create(name=name, description=description, created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


def owners_left_after(membership: Membership, *, new_role: str | None) -> int:
    """How many owners the project keeps if ``membership`` changes role (None: removed)."""
    owners = Membership.objects.filter(project=membership.project, role=Role.OWNER)
    count = owners.exclude(pk=membership.pk).count()
    return count + (1 if new_role == Role.OWNER else 0)
