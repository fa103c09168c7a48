from rest_framework import serializers

from uploads.models import Upload


class UploadStateSerializer(serializers.ModelSerializer):
    """Where an upload stands, and the Dataset it became once complete."""

    # Plain text here: the kind's choice set is documented once, on datasets.
    dataset_kind = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="receiving or complete")
    # null until the upload is complete and has become a Dataset
    dataset_status = serializers.CharField(
        source="dataset.status", read_only=True, default=None, allow_null=True
    )
    dataset_status_message = serializers.CharField(
        source="dataset.status_message", read_only=True, default=None, allow_null=True
    )
    dataset_sha256 = serializers.CharField(
        source="dataset.sha256", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Upload
        fields = [
            "id",
            "project",
            "filename",
            "dataset_kind",
            "cell",
            "charge_state",
            "beamtime",
            "region",
            "length",
            "offset",
            "status",
            "dataset",
            "dataset_status",
            "dataset_status_message",
            "dataset_sha256",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
