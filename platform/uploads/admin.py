from django.contrib import admin

from uploads.models import Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["filename", "project", "created_by", "offset", "length", "status", "dataset"]
    list_filter = ["status", "dataset_kind"]
    search_fields = ["filename"]
    readonly_fields = ["id", "offset", "length", "dataset", "created_at", "updated_at"]
