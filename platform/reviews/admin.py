from django.contrib import admin

from reviews.models import ReviewLink


@admin.register(ReviewLink)
class ReviewLinkAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "target", "note", "expires_at", "revoked_at", "uses"]
    list_filter = ["target"]
    readonly_fields = ["nonce", "uses", "last_used_at"]
