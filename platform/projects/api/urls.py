from projects.api.views import AuditEventViewSet, MembershipViewSet, ProjectViewSet


def register(router) -> None:
    router.register("projects", ProjectViewSet, basename="project")
    router.register("memberships", MembershipViewSet, basename="membership")
    router.register("audit-events", AuditEventViewSet, basename="auditevent")
