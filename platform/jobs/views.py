"""Pages: job list and detail (live progress), result pages with Plotly figures and comments,
run forms for a dataset or a whole cell, and the comparison report of a cell."""

from __future__ import annotations

import json

from catalogue.models import Cell, Dataset, Sample
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.generic import DetailView, ListView
from projects.permissions import (
    ProjectScopedMixin,
    can_edit,
    get_for_user_or_404,
    projects_for,
)

from analysis_engine.errors import EngineInputError

from . import dispatch, execution, reports
from . import engine_registry as registry
from .filtersets import AnalysisJobFilterSet
from .forms import CommentForm, RunJobForm, RunPipelineForm
from .models import AnalysisJob, Comment, Result
from .planning import plan_cell

READ_ONLY = "Your role in this project is read-only (viewer): you cannot run jobs."


class JobListView(ProjectScopedMixin, ListView):
    model = AnalysisJob
    template_name = "jobs/job_list.html"
    paginate_by = 50

    def get_queryset(self):
        qs = super().get_queryset().select_related("project", "created_by")
        data = self.request.GET.copy()
        if "top_level" not in data and "parent" not in data:
            data["top_level"] = "true"
        self.filterset = AnalysisJobFilterSet(data, queryset=qs, request=self.request)
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["filter"] = self.filterset
        ctx["projects"] = projects_for(self.request.user)
        return ctx


class JobDetailView(ProjectScopedMixin, DetailView):
    model = AnalysisJob
    template_name = "jobs/job_detail.html"
    context_object_name = "job"

    def get_queryset(self):
        return super().get_queryset().select_related("project", "cell", "parent", "created_by")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = self.object
        ctx["can_edit"] = can_edit(self.request.user, job.project)
        ctx["children"] = job.children.order_by("id")
        ctx["results"] = job.results.defer("figures")
        ctx["inputs"] = job.inputs.all()
        ctx["input_results"] = job.input_results.all()
        ctx["upstream"] = job.upstream.all()
        return ctx


class ResultDetailView(ProjectScopedMixin, DetailView):
    model = Result
    template_name = "jobs/result_detail.html"
    context_object_name = "result"

    def get_queryset(self):
        return super().get_queryset().select_related("project", "job", "cell", "charge_state")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["comments"] = self.object.comments.select_related("author")
        ctx["comment_form"] = kwargs.get("comment_form") or CommentForm()
        ctx["summary_json"] = json.dumps(self.object.summary, indent=2)
        ctx["provenance_json"] = json.dumps(self.object.provenance, indent=2)
        ctx["can_edit"] = can_edit(self.request.user, self.object.project)
        ctx["exports"] = execution.result_exports(self.object)
        return ctx

    def post(self, request, *args, **kwargs):
        """Add a comment: every member, viewers included, may comment on a result."""
        self.object = self.get_object()
        form = CommentForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(comment_form=form))
        Comment.objects.create(
            project=self.object.project,
            result=self.object,
            author=request.user,
            text=form.cleaned_data["text"],
        )
        return redirect(self.object.get_absolute_url() + "#comments")


@login_required
def run_dataset_job(request, pk: int):
    """Start a stage job on one dataset (GET shows the form)."""
    dataset = get_for_user_or_404(Dataset.objects.select_related("project"), request.user, pk=pk)
    editable = can_edit(request.user, dataset.project)
    if request.method == "POST" and not editable:
        raise PermissionDenied(READ_ONLY)
    form = RunJobForm(request.POST or None, data_kind=dataset.kind)
    if request.method == "POST" and form.is_valid():
        try:
            job, created = dispatch.submit_job(
                project=dataset.project,
                user=request.user,
                kind=form.cleaned_data["kind"],
                datasets=[dataset],
                parameters=form.cleaned_data["parameters"],
                force=form.cleaned_data["force"],
            )
        except EngineInputError as exc:
            form.add_error(None, str(exc))
        else:
            if not created:
                messages.info(request, "This exact job already exists: showing it.")
            return redirect(job)
    jobs = AnalysisJob.objects.filter(inputs=dataset).order_by("-created_at")[:20]
    return render(
        request,
        "jobs/run_dataset.html",
        {"dataset": dataset, "form": form, "can_edit": editable, "jobs": jobs},
    )


@login_required
def run_cell_pipeline(request, pk: int):
    """Start the whole-cell pipeline (GET shows what it would run)."""
    cell = get_for_user_or_404(
        Cell.objects.select_related("project", "cathode"), request.user, pk=pk
    )
    editable = can_edit(request.user, cell.project)
    if request.method == "POST" and not editable:
        raise PermissionDenied(READ_ONLY)
    form = RunPipelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job, created = dispatch.submit_pipeline(
                project=cell.project,
                user=request.user,
                cell=cell,
                parameters=form.cleaned_data["parameters"],
                force=form.cleaned_data["force"],
            )
        except EngineInputError as exc:
            form.add_error(None, str(exc))
        else:
            if not created:
                messages.info(request, "This exact pipeline already exists: showing it.")
            return redirect(job)
    try:
        plan = plan_cell(cell, {})
    except EngineInputError as exc:
        plan, form_error = None, str(exc)
    else:
        form_error = ""
    jobs = AnalysisJob.objects.filter(cell=cell, parent__isnull=True).order_by("-created_at")[:20]
    return render(
        request,
        "jobs/run_cell.html",
        {
            "cell": cell,
            "form": form,
            "can_edit": editable,
            "plan": plan,
            "plan_error": form_error,
            "jobs": jobs,
        },
    )


def _report_for(request, scope: str, pk: int):
    """(object, report dict, title) of a cell or sample report; 404 outside the user's projects."""
    if scope == "cells":
        obj = get_for_user_or_404(
            Cell.objects.select_related("project", "cathode"), request.user, pk=pk
        )
        return obj, reports.build_cell_report(obj), f"CorreLi comparison report: cell {obj.name}"
    if scope == "samples":
        obj = get_for_user_or_404(Sample.objects.select_related("project"), request.user, pk=pk)
        return (
            obj,
            reports.build_sample_report(obj),
            f"CorreLi comparison report: sample {obj.name}",
        )
    raise Http404("Reports are per cell or per sample.")


@login_required
def report(request, scope: str, pk: int):
    obj, data, title = _report_for(request, scope, pk)
    return render(
        request,
        "reports/report.html",
        {
            "object": obj,
            "scope": scope,
            "title": title,
            "report": data,
            "tables": data["tables"],
            "sample": obj if scope == "samples" else obj.cathode,
            "cell": obj if scope == "cells" else None,
            "can_edit": can_edit(request.user, obj.project),
        },
    )


def _basename(scope: str, obj) -> str:
    return f"correli_report_{scope[:-1]}_{slugify(obj.name) or obj.pk}"


@login_required
def report_download(request, scope: str, pk: int, fmt: str):
    """``html``: one self-contained offline file; ``zip``: HTML + CSV tables."""
    obj, data, title = _report_for(request, scope, pk)
    base = _basename(scope, obj)
    if fmt == "html":
        response = HttpResponse(
            reports.render_offline_html(data, title=title), content_type="text/html"
        )
    elif fmt == "zip":
        response = HttpResponse(
            reports.report_zip(data, title=title, basename=base), content_type="application/zip"
        )
    else:
        raise Http404("Unknown report format.")
    response["Content-Disposition"] = f'attachment; filename="{base}.{fmt}"'
    return response


@login_required
def report_csv(request, scope: str, pk: int, table: str):
    obj, data, _ = _report_for(request, scope, pk)
    if table not in data["tables"]:
        raise Http404(f"No table {table!r}.")
    response = HttpResponse(reports.tables_to_csv(data["tables"][table]), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{_basename(scope, obj)}_{table}.csv"'
    return response


@login_required
def job_kinds(request):
    return render(request, "jobs/kinds.html", {"kinds": registry.submittable_kinds()})
