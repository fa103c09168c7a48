"""tus endpoint routes, added to ``/api/v1/`` by ``config.urls``."""

from django.urls import path

from uploads.api.views import UploadCollectionView, UploadDetailView

urlpatterns = [
    path("uploads/", UploadCollectionView.as_view(), name="upload-list"),
    path("uploads/<uuid:pk>/", UploadDetailView.as_view(), name="upload-detail"),
]
