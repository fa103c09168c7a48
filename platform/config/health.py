"""``/healthz/`` for container healthchecks: answers before host checks and HTTPS redirects
(probes come from inside the container as http://127.0.0.1), and checks the database."""

from django.db import connection
from django.http import HttpResponse

HEALTH_PATH = "/healthz/"


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != HEALTH_PATH:
            return self.get_response(request)
        try:
            connection.ensure_connection()
        except Exception as exc:  # any database failure makes the container unhealthy
            return HttpResponse(
                f"database unavailable: {exc}", status=503, content_type="text/plain"
            )
        return HttpResponse("ok", content_type="text/plain")
