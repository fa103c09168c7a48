from django.urls import path

from reviews import views

app_name = "reviews"
urlpatterns = [
    path("new/<str:target>/<int:pk>/", views.create, name="create"),
    path("links/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("<str:token>/", views.open_link, name="open"),
    path("<str:token>/download/<str:what>/", views.download, name="download"),
]
