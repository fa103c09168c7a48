from django.apps import AppConfig


class ViewerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "viewer"
    verbose_name = "Slice viewer and dataset previews"

    def ready(self) -> None:
        from . import signals

        signals.connect()
