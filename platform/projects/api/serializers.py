from django.contrib.auth import get_user_model
from rest_framework import serializers

from projects.models import AuditEvent, Membership, Project, Role
from projects.permissions import role_in, scope_queryset


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A link to another object; ids of objects outside the user's projects do not exist."""

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        return scope_queryset(queryset, getattr(request, "user", None))


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in this project")
    url = serializers.HyperlinkedIdentityField(view_name="project-detail")

    class Meta:
        model = Project
        fields = ["id", "url", "name", "slug", "description", "role", "created_at", "updated_at"]
        read_only_fields = ["slug", "created_at", "updated_at"]

    def get_role(self, obj) -> str | None:
        request = self.context.get("request")
        return role_in(getattr(request, "user", None), obj)


class MembershipSerializer(serializers.ModelSerializer):
    project = ScopedPrimaryKeyRelatedField(queryset=Project.objects.all())
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True)
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "project", "user", "role", "created_at"]
        read_only_fields = ["created_at"]
        validators = [
            serializers.UniqueTogetherValidator(
                queryset=Membership.objects.all(),
                fields=["project", "user"],
                message="This user is already a member of the project.",
            )
        ]


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "project",
            "username",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "created_at",
        ]
