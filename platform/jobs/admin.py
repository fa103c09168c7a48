from django.contrib import admin

from .models import AnalysisJob, Comment, Result


class ResultInline(admin.TabularInline):
    model = Result
    fields = ["name", "kind", "output_file", "sha256", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(AnalysisJob)
class AnalysisJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "label",
        "project",
        "status",
        "progress",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "kind", "project"]
    search_fields = ["label", "job_key", "error"]
    raw_id_fields = ["parent", "cell", "charge_state", "created_by"]
    filter_horizontal = ["inputs"]
    readonly_fields = [
        "job_key",
        "celery_task_id",
        "worker",
        "attempts",
        "started_at",
        "finished_at",
    ]
    inlines = [ResultInline]


@admin.register(Result)
class ResultAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "project", "cell", "region", "created_at"]
    list_filter = ["kind", "project"]
    search_fields = ["name", "sha256"]
    raw_id_fields = ["job", "cell", "charge_state"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "result", "author", "created_at"]
    raw_id_fields = ["result", "author"]
