from django.urls import path

from projects import views

app_name = "projects"
urlpatterns = [
    path("", views.ProjectListView.as_view(), name="project_list"),
    path("home/", views.home, name="home"),
    path("projects/add/", views.ProjectCreateView.as_view(), name="project_add"),
    path("projects/<int:pk>/", views.ProjectDetailView.as_view(), name="project_detail"),
    path("projects/<int:pk>/edit/", views.ProjectUpdateView.as_view(), name="project_edit"),
    path("projects/<int:pk>/delete/", views.ProjectDeleteView.as_view(), name="project_delete"),
    path("projects/<int:pk>/members/", views.members, name="members"),
    path(
        "projects/<int:pk>/members/<int:membership_pk>/",
        views.member_change,
        name="member_change",
    ),
    path("projects/<int:pk>/audit/", views.AuditListView.as_view(), name="audit"),
]
