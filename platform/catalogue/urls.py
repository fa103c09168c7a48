from catalogue.views import build_urlpatterns

app_name = "catalogue"
urlpatterns = build_urlpatterns()
