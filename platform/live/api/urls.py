from django.urls import path

from live.views import event_stream

urlpatterns = [path("events/", event_stream, name="live-events")]
