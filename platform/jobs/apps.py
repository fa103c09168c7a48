from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"
    verbose_name = "Analysis jobs and results"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web too): dispatch sends them by name,
        # and eager mode (tests) runs them in-process only when they are registered. Django
        # requires app modules that import models to load in ready(), hence the import here.
        from jobs import tasks  # noqa: F401
