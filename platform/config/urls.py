"""URL map: pages per app, the REST API under /api/v1/, schema and docs, admin.

Apps built in parallel (jobs, uploads) are included only when present. Each app's
``api/urls.py`` contributes to the one DefaultRouter through ``register(router)`` (or a
module-level ``router`` whose registry is merged), and may add ``urlpatterns`` of its own.
"""

import importlib

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from projects.api.views import ObtainTokenView
from rest_framework.routers import DefaultRouter

API_APPS = ["projects", "catalogue", *settings.OPTIONAL_APPS]

router = DefaultRouter()
api_extra_patterns = []
for app in API_APPS:
    try:
        module = importlib.import_module(f"{app}.api.urls")
    except ModuleNotFoundError as exc:
        if exc.name not in {f"{app}.api", f"{app}.api.urls"}:
            raise
        continue
    if hasattr(module, "register"):
        module.register(router)
    elif hasattr(module, "router"):
        router.registry.extend(module.router.registry)
    api_extra_patterns += list(getattr(module, "urlpatterns", []))

page_patterns = []
for app in settings.OPTIONAL_APPS:
    try:
        importlib.import_module(f"{app}.urls")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.urls":
            raise
        continue
    page_patterns.append(path(f"{app}/", include(f"{app}.urls")))

urlpatterns = [
    path("", include("projects.urls")),
    path("catalogue/", include("catalogue.urls")),
    path("viewer/", include("viewer.urls")),
    *page_patterns,
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/v1/", include(api_extra_patterns)),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
