from django.urls import path

from live.api import views
from live.views import event_stream

urlpatterns = [
    path("events/", event_stream, name="live-events"),
    path("live/acquisitions/", views.AcquisitionListView.as_view(), name="live-acquisitions"),
    path(
        "live/acquisitions/<int:pk>/",
        views.AcquisitionDetailView.as_view(),
        name="live-acquisition-detail",
    ),
    path(
        "live/acquisitions/<int:pk>/chunks/<int:seq>/",
        views.ChunkView.as_view(),
        name="live-acquisition-chunk",
    ),
    path(
        "live/acquisitions/<int:pk>/finish/",
        views.FinishView.as_view(),
        name="live-acquisition-finish",
    ),
    path(
        "live/acquisitions/<int:pk>/time-resolved/",
        views.TimeResolvedView.as_view(),
        name="live-acquisition-time-resolved",
    ),
]
