from __future__ import annotations

from catalogue.models import Cell, Dataset
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from projects.api.serializers import ScopedPrimaryKeyRelatedField
from rest_framework import serializers

from jobs import engine_registry as registry
from jobs.execution import result_exports
from jobs.models import AnalysisJob, Comment, Result
from jobs.planning import pipeline_progress


class ResultBriefSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="result-detail")
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Result
        fields = ["id", "url", "page_url", "kind", "name"]

    def get_page_url(self, obj) -> str:
        return obj.get_absolute_url()


class AnalysisJobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="job-detail")
    progress = serializers.SerializerMethodField(help_text="0..1")
    results = ResultBriefSerializer(many=True, read_only=True)
    inputs = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    input_results = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    children = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = AnalysisJob
        fields = [
            "id",
            "url",
            "page_url",
            "project",
            "kind",
            "label",
            "status",
            "progress",
            "step",
            "error",
            "parameters",
            "inputs",
            "input_results",
            "parent",
            "children",
            "cell",
            "charge_state",
            "region",
            "job_key",
            "attempts",
            "worker",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "results",
        ]
        read_only_fields = fields

    def get_progress(self, obj) -> float:
        if obj.kind == registry.PIPELINE_KIND and not obj.is_finished:
            return round(pipeline_progress(obj), 4)
        return round(obj.progress, 4)

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"type": "string"},
                    "label": {"type": "string"},
                    "status": {"type": "string"},
                    "progress": {"type": "number"},
                    "step": {"type": "string"},
                    "error": {"type": "string"},
                },
            },
        }
    )
    def get_children(self, obj) -> list[dict]:
        if obj.kind != registry.PIPELINE_KIND:
            return []
        return list(
            obj.children.order_by("id").values(
                "id", "kind", "label", "status", "progress", "step", "error"
            )
        )

    def get_page_url(self, obj) -> str:
        return obj.get_absolute_url()


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="A stage ("
        + ", ".join(registry.JOB_KINDS)
        + ") or 'pipeline' for a whole cell; see GET /api/v1/jobs/kinds/."
    )
    inputs = ScopedPrimaryKeyRelatedField(
        queryset=Dataset.objects.all(), many=True, required=False, help_text="Dataset ids"
    )
    input_results = ScopedPrimaryKeyRelatedField(
        queryset=Result.objects.all(),
        many=True,
        required=False,
        help_text="Results of earlier jobs used as inputs (after the datasets)",
    )
    cell = ScopedPrimaryKeyRelatedField(
        queryset=Cell.objects.all(), required=False, help_text="The cell of a pipeline job"
    )
    parameters = serializers.DictField(
        required=False, default=dict, help_text="Engine options (see GET /api/v1/jobs/kinds/)"
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="Run again even if the same job exists"
    )

    def validate_kind(self, value: str) -> str:
        if value != registry.PIPELINE_KIND and value not in registry.JOB_KINDS:
            known = ", ".join([*registry.JOB_KINDS, registry.PIPELINE_KIND])
            raise serializers.ValidationError(f"Unknown job kind {value!r}; known: {known}.")
        return value

    def validate(self, attrs):
        if attrs["kind"] == registry.PIPELINE_KIND:
            if not attrs.get("cell"):
                raise serializers.ValidationError({"cell": "A pipeline job needs a cell."})
        elif not attrs.get("inputs") and not attrs.get("input_results"):
            raise serializers.ValidationError({"inputs": "Give at least one input dataset."})
        objs = [*attrs.get("inputs", []), *attrs.get("input_results", [])]
        if attrs.get("cell"):
            objs.append(attrs["cell"])
        projects = {o.project_id for o in objs}
        if len(projects) > 1:
            raise serializers.ValidationError("All inputs must belong to the same project.")
        attrs["project"] = objs[0].project
        return attrs


class ResultSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="result-detail")
    figure_url = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    figure_names = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Result
        fields = [
            "id",
            "url",
            "page_url",
            "project",
            "job",
            "kind",
            "name",
            "cell",
            "charge_state",
            "region",
            "summary",
            "provenance",
            "files",
            "figure_names",
            "figure_url",
            "created_at",
        ]
        read_only_fields = fields

    def get_figure_url(self, obj) -> str:
        return reverse("result-figure", args=[obj.pk])

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_files(self, obj) -> dict:
        if not obj.output_file:
            return {}
        files = {
            "output": {
                "url": reverse("result-download", args=[obj.pk]),
                "name": obj.output_file.name.rsplit("/", 1)[-1],
                "sha256": obj.sha256,
                "size": obj.size,
            }
        }
        stem = files["output"]["name"].rsplit(".", 1)[0]
        for fmt in result_exports(obj):  # converted on first download
            files[fmt] = {
                "url": reverse("result-export", kwargs={"pk": obj.pk, "fmt": fmt}),
                "name": f"{stem}.{fmt}",
            }
        return files

    def get_figure_names(self, obj) -> list[str]:
        return obj.figure_names

    def get_page_url(self, obj) -> str:
        return obj.get_absolute_url()


class ResultListSerializer(ResultSerializer):
    """The list leaves out provenance to stay light."""

    class Meta(ResultSerializer.Meta):
        fields = [f for f in ResultSerializer.Meta.fields if f not in {"provenance"}]
        read_only_fields = fields


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "result", "author", "text", "created_at"]
        read_only_fields = ["id", "result", "author", "created_at"]


class JobKindInputSerializer(serializers.Serializer):
    name = serializers.CharField()
    accepts = serializers.ListField(child=serializers.CharField(), help_text="Data kinds")
    many = serializers.BooleanField(help_text="Takes a list (e.g. one map per depth region)")


class JobKindSerializer(serializers.Serializer):
    """One entry of ``GET /api/v1/jobs/kinds/`` (a list, not paginated)."""

    kind = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    inputs = JobKindInputSerializer(many=True)
    parameters = serializers.DictField(
        help_text="Engine options (the run_* signature) with their defaults"
    )
    options = serializers.ListField(
        child=serializers.DictField(),
        help_text="Each option as `python -m analysis_engine COMMAND --help` describes it: "
        "name, type, default, required, help, choices, units, flags",
    )
    data_parameters = serializers.DictField(
        help_text='Options that name data: {"dataset": id} or {"result": id, "path": "/x"}'
    )
    available = serializers.BooleanField()
