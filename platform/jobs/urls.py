from django.urls import path, re_path

from . import views

app_name = "jobs"

urlpatterns = [
    path("", views.JobListView.as_view(), name="job-list"),
    path("kinds/", views.job_kinds, name="job-kinds"),
    path("<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("results/<int:pk>/", views.ResultDetailView.as_view(), name="result-detail"),
    path("datasets/<int:pk>/run/", views.run_dataset_job, name="run-dataset"),
    path("cells/<int:pk>/run/", views.run_cell_pipeline, name="run-cell"),
    # comparison reports of a cell or a sample (electrode)
    re_path(r"^(?P<scope>cells|samples)/(?P<pk>[0-9]+)/report/$", views.report, name="report"),
    re_path(
        r"^(?P<scope>cells|samples)/(?P<pk>[0-9]+)/report\.(?P<fmt>html|zip)$",
        views.report_download,
        name="report-download",
    ),
    re_path(
        r"^(?P<scope>cells|samples)/(?P<pk>[0-9]+)/report/(?P<table>[a-z_]+)\.csv$",
        views.report_csv,
        name="report-csv",
    ),
]
