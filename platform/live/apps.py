from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Live updates and acquisitions"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the model signal handlers)
