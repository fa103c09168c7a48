from django.conf import settings


def correli(request):
    """Template context shared by every page: which optional apps are installed."""
    return {
        "correli_has_jobs": "jobs" in settings.INSTALLED_APPS,
        "correli_has_uploads": "uploads" in settings.INSTALLED_APPS,
    }
