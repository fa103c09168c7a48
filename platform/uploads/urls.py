from django.urls import path

from uploads.views import UploadPageView

app_name = "uploads"
urlpatterns = [path("", UploadPageView.as_view(), name="upload")]
