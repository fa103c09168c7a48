"""Project pages: the dashboard (my projects), a project's overview, members and audit trail."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views import generic

from projects import throttling
from projects.forms import MembershipForm, ProjectForm, RoleForm
from projects.models import Membership, Project, Role
from projects.permissions import (
    ProjectEditMixin,
    ProjectScopedMixin,
    get_for_user_or_404,
    is_owner,
    projects_for,
    role_in,
)
from projects.services import create_project, owners_left_after


class ProjectListView(ProjectScopedMixin, generic.ListView):
    """The dashboard: my projects with their catalogue counts."""

    model = Project
    template_name = "projects/project_list.html"
    paginate_by = 50

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .annotate(
                n_samples=Count("samples", distinct=True),
                n_cells=Count("cells", distinct=True),
                n_datasets=Count("datasets", distinct=True),
                n_members=Count("memberships", distinct=True),
            )
            .order_by("name", "pk")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roles = dict(
            Membership.objects.filter(user=self.request.user).values_list("project_id", "role")
        )
        context["roles"] = roles
        for project in context["object_list"]:
            project.my_role = roles.get(project.pk)
        return context


class ThrottledLoginView(LoginView):
    """The login form, rate-limited per client address and per username (429 + Retry-After).

    Lockout after repeated failures is django-axes' (``AXES_*`` settings), answered the same way.
    """

    def post(self, request, *args, **kwargs):
        wait_s = throttling.check_login_rate(request)
        if wait_s is not None:
            throttling.record_login_refusal(request, reason="rate limited")
            return throttling.throttled_response(request, wait_s)
        return super().post(request, *args, **kwargs)


def home(request):
    """Where a login lands: the project dashboard when the user has exactly one project
    (the usual case on a beamline PC and in the demo), otherwise the project list."""
    if not request.user.is_authenticated:
        return redirect("login")
    ids = list(projects_for(request.user).values_list("pk", flat=True)[:2])
    if len(ids) == 1:
        return redirect("projects:project_detail", pk=ids[0])
    return redirect("projects:project_list")


class ProjectDetailView(ProjectScopedMixin, generic.DetailView):
    model = Project
    template_name = "projects/project_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        project = self.object
        context.update(
            {
                "role": role_in(self.request.user, project),
                "is_owner": is_owner(self.request.user, project),
                "memberships": project.memberships.select_related("user"),
                "counts": {
                    "Samples": project.samples.count(),
                    "Cells": project.cells.count(),
                    "Charge states": project.charge_states.count(),
                    "Beamtimes": project.beamtimes.count(),
                    "Datasets": project.datasets.count(),
                },
                "datasets_by_status": project.datasets.values("status").annotate(n=Count("pk")),
                "recent_datasets": project.datasets.order_by("-created_at")[:10],
                "recent_events": project.audit_events.order_by("-created_at")[:15],
                "rejected": project.datasets.filter(Q(status="rejected")).count(),
            }
        )
        return context


class ProjectCreateView(LoginRequiredMixin, generic.FormView):
    form_class = ProjectForm
    template_name = "projects/project_form.html"

    def form_valid(self, form):
        project = create_project(user=self.request.user, **form.cleaned_data)
        messages.success(self.request, "Project created; you are its owner.")
        return HttpResponseRedirect(project.get_absolute_url())


class ProjectUpdateView(ProjectEditMixin, generic.UpdateView):
    model = Project
    form_class = ProjectForm
    template_name = "projects/project_form.html"
    require_owner = True


class ProjectDeleteView(ProjectEditMixin, generic.DeleteView):
    model = Project
    template_name = "projects/project_confirm_delete.html"
    require_owner = True
    success_url = reverse_lazy("projects:project_list")


class AuditListView(ProjectScopedMixin, generic.ListView):
    template_name = "projects/audit_list.html"
    paginate_by = 100

    def get_queryset(self):
        self.project = get_for_user_or_404(
            Project.objects.all(), self.request.user, pk=self.kwargs["pk"]
        )
        return self.project.audit_events.order_by("-created_at", "-pk")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["project"] = self.project
        return context


def members(request, pk: int):
    """List members; owners add members here (POST)."""
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    project = get_for_user_or_404(Project.objects.all(), request.user, pk=pk)
    owner = is_owner(request.user, project)
    form = MembershipForm(request.POST or None, project=project)
    if request.method == "POST":
        if not owner:
            raise PermissionDenied("Only a project owner can manage members.")
        if form.is_valid():
            Membership.objects.create(
                project=project, user=form.user, role=form.cleaned_data["role"]
            )
            messages.success(request, f"{form.user.username} added.")
            return redirect("projects:members", pk=project.pk)
    return render(
        request,
        "projects/members.html",
        {
            "project": project,
            "memberships": project.memberships.select_related("user"),
            "form": form,
            "is_owner": owner,
            "roles": Role.choices,
        },
    )


def member_change(request, pk: int, membership_pk: int):
    """Owners change a member's role or remove them (POST ``role`` or ``remove``)."""
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    project = get_for_user_or_404(Project.objects.all(), request.user, pk=pk)
    membership = get_for_user_or_404(
        Membership.objects.filter(project=project), request.user, pk=membership_pk
    )
    if request.method != "POST":
        return redirect("projects:members", pk=project.pk)
    if not is_owner(request.user, project):
        raise PermissionDenied("Only a project owner can manage members.")
    if "remove" in request.POST:
        if owners_left_after(membership, new_role=None) == 0:
            messages.error(request, "A project must keep at least one owner.")
        else:
            membership.delete()
            messages.success(request, f"{membership.user.username} removed.")
    else:
        form = RoleForm(request.POST, instance=membership)
        if not form.is_valid():
            messages.error(request, "Unknown role.")
        elif owners_left_after(membership, new_role=form.cleaned_data["role"]) == 0:
            messages.error(request, "A project must keep at least one owner.")
        else:
            form.save()
            messages.success(request, f"{membership.user.username} is now {membership.role}.")
    return HttpResponseRedirect(reverse("projects:members", args=[project.pk]))
