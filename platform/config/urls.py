"""URL map: pages per app, the REST API under /api/v1/, schema and docs, admin.

Each app's ``api/urls.py`` contributes to the one API router through ``register(router)`` and
may add ``urlpatterns`` of its own (the tus endpoint).
"""

from catalogue.api import urls as catalogue_api
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from jobs.api import urls as jobs_api
from live.api import urls as live_api
from projects.api import urls as projects_api
from projects.api.routers import ApiRouter
from projects.api.views import ObtainTokenView
from projects.views import ThrottledLoginView
from reviews.api import urls as reviews_api
from uploads.api import urls as uploads_api

router = ApiRouter()
api_extra_patterns = []
for module in (projects_api, catalogue_api, jobs_api, uploads_api, reviews_api, live_api):
    if hasattr(module, "register"):
        module.register(router)
    api_extra_patterns += list(getattr(module, "urlpatterns", []))

urlpatterns = [
    path("", include("projects.urls")),
    path("catalogue/", include("catalogue.urls")),
    path("viewer/", include("viewer.urls")),
    path("jobs/", include("jobs.urls")),
    path("uploads/", include("uploads.urls")),
    path("review/", include("reviews.urls")),
    path("live/", include("live.urls")),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/v1/", include(api_extra_patterns)),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "projects.api.exceptions.not_found"
handler500 = "projects.api.exceptions.server_error"
