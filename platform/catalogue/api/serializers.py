from django.core.exceptions import ValidationError as DjangoValidationError
from projects.api.serializers import ScopedPrimaryKeyRelatedField
from projects.models import Project
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample


class CatalogueSerializer(serializers.ModelSerializer):
    """Links resolve only inside the user's projects and must stay within one project."""

    project = ScopedPrimaryKeyRelatedField(queryset=Project.objects.all())
    serializer_related_field = ScopedPrimaryKeyRelatedField

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance or self.Meta.model()
        probe = self.Meta.model(
            **{
                f.attname: getattr(instance, f.attname)
                for f in self.Meta.model._meta.concrete_fields
            }
        )
        for key, value in attrs.items():
            setattr(probe, key, value)
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class SampleSerializer(CatalogueSerializer):
    class Meta:
        model = Sample
        fields = [
            "id",
            "project",
            "name",
            "material",
            "fabrication_method",
            "thickness_um",
            "composition",
            "mass_loading_mg_cm2",
            "nominal_porosity",
            "notes",
            "created_at",
            "updated_at",
        ]


class CellSerializer(CatalogueSerializer):
    class Meta:
        model = Cell
        fields = [
            "id",
            "project",
            "name",
            "format",
            "cathode",
            "counter_electrode",
            "separator",
            "electrolyte",
            "electrode_area_cm2",
            "li_concentration_mol_l",
            "assembly_date",
            "notes",
            "created_at",
            "updated_at",
        ]


class ChargeStateSerializer(CatalogueSerializer):
    class Meta:
        model = ChargeState
        fields = [
            "id",
            "project",
            "cell",
            "state",
            "cycle_number",
            "c_rate",
            "voltage_min_v",
            "voltage_max_v",
            "capacity_mah_g",
            "recorded_at",
            "notes",
            "created_at",
            "updated_at",
        ]


class BeamtimeSerializer(CatalogueSerializer):
    class Meta:
        model = Beamtime
        fields = [
            "id",
            "project",
            "facility",
            "beamline",
            "proposal",
            "start_date",
            "end_date",
            "beam_energy_kev",
            "detector",
            "scattering_angle_deg",
            "sample_to_pinhole_mm",
            "pinhole_to_detector_mm",
            "pixel_pitch_mm",
            "beam_axis",
            "notes",
            "created_at",
            "updated_at",
        ]


# Columns the dataset list reads (``.values()``), in the serializer's field order.
DATASET_LIST_COLUMNS = (
    "id",
    "project_id",
    "kind",
    "name",
    "file",
    "size",
    "sha256",
    "status",
    "status_message",
    "cell_id",
    "charge_state_id",
    "beamtime_id",
    "region",
    "metadata",
    "notes",
    "created_by_id",
    "created_at",
    "updated_at",
)


def _datetime_formatter():
    """``DateTimeField().to_representation`` for aware datetimes, without its per-call
    settings look-ups when the output format is ISO 8601 (the default)."""
    field = serializers.DateTimeField()
    if getattr(field, "format", api_settings.DATETIME_FORMAT).lower() != ISO_8601:
        return field.to_representation
    tz = field.default_timezone()
    if tz is None:  # USE_TZ off
        return field.to_representation

    def iso(value):
        if value is None:
            return None
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


def dataset_list_rows(rows, url_prefix: str, url_suffix: str) -> list[dict]:
    """``DatasetSerializer(objs, many=True).data`` from ``.values(*DATASET_LIST_COLUMNS)``
    rows; ``url_prefix + str(pk) + url_suffix`` is the absolute download URL. A test keeps
    this equal to the serializer's output."""
    iso = _datetime_formatter()
    return [
        {
            "id": (pk := row["id"]),
            "project": row["project_id"],
            "kind": row["kind"],
            "name": row["name"],
            "download_url": f"{url_prefix}{pk}{url_suffix}" if row["file"] else None,
            "size": row["size"],
            "sha256": row["sha256"],
            "status": row["status"],
            "status_message": row["status_message"],
            "cell": row["cell_id"],
            "charge_state": row["charge_state_id"],
            "beamtime": row["beamtime_id"],
            "region": row["region"],
            "metadata": row["metadata"],
            "notes": row["notes"],
            "created_by": row["created_by_id"],
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }
        for row in rows
    ]


class DatasetSerializer(CatalogueSerializer):
    """A data file. Upload large files with tus (``/api/v1/uploads/``); small ones may be
    sent here as multipart ``file``, then they are hashed and format-checked at once."""

    download_url = serializers.SerializerMethodField()
    file = serializers.FileField(write_only=True, required=False)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "kind",
            "name",
            "file",
            "download_url",
            "size",
            "sha256",
            "status",
            "status_message",
            "cell",
            "charge_state",
            "beamtime",
            "region",
            "metadata",
            "notes",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["size", "sha256", "status", "status_message", "created_by"]
        extra_kwargs = {"name": {"required": False}}

    def get_download_url(self, obj) -> str | None:
        if not obj.file:
            return None
        request = self.context.get("request")
        from django.urls import reverse

        url = reverse("dataset-download", args=[obj.pk])
        return request.build_absolute_uri(url) if request else url

    def validate_region(self, value):
        if value is not None and value < 1:
            raise serializers.ValidationError("Regions are numbered from 1.")
        return value

    def validate(self, attrs):
        if self.instance is not None and "file" in attrs:
            raise serializers.ValidationError({"file": "A stored file cannot be replaced."})
        if self.instance is None and not attrs.get("name"):
            if attrs.get("file") is None:
                raise serializers.ValidationError({"name": "Give a name or upload a file."})
            attrs["name"] = attrs["file"].name
        return super().validate(attrs)
