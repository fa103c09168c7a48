from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Review links for referees"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from projects import audit

        from reviews.models import ReviewLink

        audit.register(ReviewLink)
