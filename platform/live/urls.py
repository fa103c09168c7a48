from django.urls import path

from . import pages

app_name = "live"

urlpatterns = [
    path("", pages.acquisition_list, name="acquisitions"),
    path("<int:pk>/", pages.acquisition_detail, name="acquisition"),
]
