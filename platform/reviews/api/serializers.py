from catalogue.models import Cell, Sample
from jobs.models import Result
from projects.api.serializers import ScopedPrimaryKeyRelatedField
from rest_framework import serializers

from reviews.models import DOWNLOADS, ReviewLink

ALL_DOWNLOADS = sorted({key for choices in DOWNLOADS.values() for key in choices})


class ReviewLinkSerializer(serializers.ModelSerializer):
    """A review link. Give exactly one of ``result``, ``cell`` (its comparison report) or
    ``sample`` (its comparison report); ``url`` is the link to hand to the referee."""

    result = ScopedPrimaryKeyRelatedField(
        queryset=Result.objects.all(), required=False, allow_null=True
    )
    cell = ScopedPrimaryKeyRelatedField(
        queryset=Cell.objects.all(), required=False, allow_null=True
    )
    sample = ScopedPrimaryKeyRelatedField(
        queryset=Sample.objects.all(), required=False, allow_null=True
    )
    downloads = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_DOWNLOADS),
        required=False,
        max_length=len(ALL_DOWNLOADS),
        help_text="Result: hdf5, summary. Report: html, zip. Nothing else can be downloaded.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        help_text="Default: 14 days from now; at most CORRELI_REVIEW_LINK_MAX_DAYS.",
    )
    url = serializers.SerializerMethodField(help_text="The link to give the referee")
    state = serializers.ChoiceField(
        choices=["active", "expired", "revoked"],
        read_only=True,
        help_text="active, expired or revoked",
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReviewLink
        fields = [
            "id",
            "project",
            "target",
            "result",
            "cell",
            "sample",
            "downloads",
            "note",
            "expires_at",
            "revoked_at",
            "state",
            "url",
            "uses",
            "last_used_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = [
            "project",
            "target",
            "revoked_at",
            "uses",
            "last_used_at",
            "created_at",
        ]

    def get_url(self, obj) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(obj.path) if request else obj.path

    def validate(self, attrs):
        given = [name for name in ("result", "cell", "sample") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of result, cell (its report) or sample (its report)."
            )
        attrs["target_object"] = attrs[given[0]]
        return attrs
