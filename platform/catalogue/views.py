"""Catalogue pages, declared once per model (NetBox style): list with filters, detail,
create, edit, delete. Lookups are scoped to the user's projects (others 404); viewers get 403
on changes; a delete that would orphan data is refused with the reason."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.views import generic
from django_filters.views import FilterView
from projects import store
from projects.api.exceptions import protected_message
from projects.permissions import (
    ProjectEditMixin,
    ProjectScopedMixin,
    can_edit,
    editable_projects_for,
    get_for_user_or_404,
    project_of,
)

from catalogue import filtersets, forms
from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample
from catalogue.services import delete_refusal


class CatalogueViewMixin:
    model = None
    columns: list[str] = []
    detail_fields: list[str] = []
    children: list[tuple[str, str]] = []  # (related name, label) shown on the detail page

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        meta = self.model._meta
        context.update(
            {
                "meta": meta,
                "url_name": self.model.url_name,
                "verbose_name": meta.verbose_name,
                "verbose_name_plural": meta.verbose_name_plural,
                "columns": [(c, _label(self.model, c)) for c in self.columns],
                "can_add": editable_projects_for(self.request.user).exists(),
                "add_url": _reverse_or_none(f"catalogue:{self.model.url_name}_add"),
            }
        )
        return context


def _reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _label(model, field_name: str) -> str:
    try:
        return str(model._meta.get_field(field_name).verbose_name)
    except Exception:  # a property or related path
        return field_name.replace("_", " ")


class ObjectListView(CatalogueViewMixin, ProjectScopedMixin, FilterView):
    template_name = "catalogue/object_list.html"
    paginate_by = 50


class ObjectDetailView(CatalogueViewMixin, ProjectScopedMixin, generic.DetailView):
    template_name = "catalogue/object_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        obj = self.object
        rows = []
        for name in self.detail_fields:
            field = obj._meta.get_field(name)
            value = getattr(obj, f"get_{name}_display")() if field.choices else getattr(obj, name)
            link = value.get_absolute_url() if hasattr(value, "get_absolute_url") else None
            rows.append((str(field.verbose_name), value, link))
        context["rows"] = rows
        context["children"] = [
            (label, getattr(obj, related).all()[:100]) for related, label in self.children
        ]
        context["can_edit"] = can_edit(self.request.user, project_of(obj))
        return context


class ObjectCreateView(CatalogueViewMixin, ProjectScopedMixin, generic.CreateView):
    template_name = "catalogue/object_form.html"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def get_initial(self):
        initial = super().get_initial()
        for key in ("project", "cell", "cathode", "charge_state", "beamtime"):
            if key in self.request.GET:
                initial[key] = self.request.GET[key]
        return initial

    def form_valid(self, form):
        if not can_edit(self.request.user, form.cleaned_data.get("project")):
            raise PermissionDenied("Your role in this project is read-only (viewer).")
        if hasattr(form.instance, "created_by_id"):
            form.instance.created_by = self.request.user
        messages.success(self.request, f"{self.model._meta.verbose_name.capitalize()} created.")
        return super().form_valid(form)


class ObjectUpdateView(CatalogueViewMixin, ProjectEditMixin, generic.UpdateView):
    template_name = "catalogue/object_form.html"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def form_valid(self, form):
        if not can_edit(self.request.user, form.cleaned_data.get("project")):
            raise PermissionDenied("Your role in this project is read-only (viewer).")
        messages.success(self.request, "Changes saved.")
        return super().form_valid(form)


class ObjectDeleteView(CatalogueViewMixin, ProjectEditMixin, generic.DeleteView):
    template_name = "catalogue/object_confirm_delete.html"

    def get_success_url(self):
        return reverse(f"catalogue:{self.model.url_name}_list")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["refusal"] = delete_refusal(self.object)
        return context

    def form_valid(self, form):
        stored = getattr(self.object, "file", None)
        stored_name = stored.name if stored else None
        try:
            self.object.delete()
        except (ProtectedError, RestrictedError) as exc:
            messages.error(self.request, protected_message(exc))
            return HttpResponseRedirect(self.object.get_absolute_url())
        if stored_name:
            stored.storage.delete(stored_name)
        messages.success(self.request, f"{self.model._meta.verbose_name.capitalize()} deleted.")
        return HttpResponseRedirect(self.get_success_url())


def dataset_download(request, pk: int):
    """Serve a dataset's file to project members only (others 404, as if it did not exist)."""
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    dataset = get_for_user_or_404(Dataset.objects.all(), request.user, pk=pk)
    if not dataset.file:
        raise Http404("This dataset has no stored file.")
    name = dataset.file.name.rsplit("/", 1)[-1]
    return store.download_response(dataset.file, filename=name)


CATALOGUE = [
    {
        "model": Sample,
        "prefix": "samples",
        "form": forms.SampleForm,
        "filterset": filtersets.SampleFilterSet,
        "columns": ["name", "project", "material", "fabrication_method", "thickness_um"],
        "children": [("cells", "Cells")],
        "select": ["project"],
    },
    {
        "model": Cell,
        "prefix": "cells",
        "form": forms.CellForm,
        "filterset": filtersets.CellFilterSet,
        "columns": ["name", "project", "format", "cathode", "assembly_date"],
        "children": [("charge_states", "Charge states"), ("datasets", "Datasets")],
        "select": ["project", "cathode"],
    },
    {
        "model": ChargeState,
        "prefix": "charge-states",
        "form": forms.ChargeStateForm,
        "filterset": filtersets.ChargeStateFilterSet,
        "columns": ["cell", "state", "cycle_number", "c_rate", "capacity_mah_g"],
        "children": [("datasets", "Datasets")],
        "select": ["project", "cell"],
    },
    {
        "model": Beamtime,
        "prefix": "beamtimes",
        "form": forms.BeamtimeForm,
        "filterset": filtersets.BeamtimeFilterSet,
        "columns": ["facility", "beamline", "proposal", "start_date", "beam_energy_kev"],
        "children": [("datasets", "Datasets"), ("compton_calibrations", "Compton calibrations")],
        "select": ["project"],
    },
    {
        "model": Dataset,
        "prefix": "datasets",
        "form": forms.DatasetForm,
        "filterset": filtersets.DatasetFilterSet,
        "columns": ["name", "project", "kind", "status", "charge_state", "region", "size"],
        "detail": [
            "project",
            "name",
            "kind",
            "status",
            "status_message",
            "size",
            "sha256",
            "cell",
            "charge_state",
            "beamtime",
            "region",
            "created_by",
            "created_at",
            "notes",
        ],
        "children": [],
        "select": ["project", "cell", "charge_state", "beamtime"],
        "add": False,  # datasets are created by uploads (tus) or the API
    },
]


def build_urlpatterns():
    patterns = []
    for spec in CATALOGUE:
        model, prefix, name = spec["model"], spec["prefix"], spec["model"].url_name
        attrs = {
            "model": model,
            "columns": spec["columns"],
            # pages show the fields the form edits, unless a model lists more (datasets)
            "detail_fields": spec.get("detail", list(spec["form"]._meta.fields)),
            "children": spec["children"],
        }
        queryset = model.objects.select_related(*spec["select"])
        list_view = type(
            f"{model.__name__}ListView",
            (ObjectListView,),
            {**attrs, "queryset": queryset, "filterset_class": spec["filterset"]},
        )
        detail_view = type(
            f"{model.__name__}DetailView", (ObjectDetailView,), {**attrs, "queryset": queryset}
        )
        form_attrs = {**attrs, "form_class": spec["form"]}
        patterns += [
            path(f"{prefix}/", list_view.as_view(), name=f"{name}_list"),
            path(f"{prefix}/<int:pk>/", detail_view.as_view(), name=f"{name}_detail"),
            path(
                f"{prefix}/<int:pk>/edit/",
                type(f"{model.__name__}UpdateView", (ObjectUpdateView,), form_attrs).as_view(),
                name=f"{name}_edit",
            ),
            path(
                f"{prefix}/<int:pk>/delete/",
                type(f"{model.__name__}DeleteView", (ObjectDeleteView,), attrs).as_view(),
                name=f"{name}_delete",
            ),
        ]
        if spec.get("add", True):
            patterns.append(
                path(
                    f"{prefix}/add/",
                    type(f"{model.__name__}CreateView", (ObjectCreateView,), form_attrs).as_view(),
                    name=f"{name}_add",
                )
            )
    patterns.append(path("datasets/<int:pk>/download/", dataset_download, name="dataset_download"))
    return patterns
