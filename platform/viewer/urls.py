from django.urls import path, re_path

from . import views

app_name = "viewer"

SCOPE = r"^(?P<scope>results|datasets)/(?P<pk>[0-9]+)/"

urlpatterns = [
    re_path(SCOPE + r"$", views.page, name="page"),
    re_path(SCOPE + r"meta/$", views.meta, name="meta"),
    re_path(SCOPE + r"slice/$", views.slice_view, name="slice"),
    re_path(SCOPE + r"cor/$", views.cor, name="cor"),
    path("datasets/<int:pk>/preview/", views.dataset_preview, name="dataset-preview"),
    path("results/<int:pk>/thumbnail/<slug:name>.png", views.thumbnail, name="thumbnail"),
]
