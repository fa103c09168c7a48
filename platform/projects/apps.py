from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects and members"

    def ready(self) -> None:
        from projects import audit, files, throttling  # noqa: F401 - throttling: signal receivers
        from projects.models import Membership, Project

        audit.register(Project)
        audit.register(Membership)
        files.connect_receivers()
