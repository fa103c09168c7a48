"""The upload page: the drop zone with its catalogue links preselected from the query string."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView


class UploadPageView(LoginRequiredMixin, TemplateView):
    template_name = "uploads/upload_page.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for key in ("project", "cell", "charge_state", "beamtime", "region"):
            value = self.request.GET.get(key, "")
            context[f"preset_{key}"] = value if value.isdigit() else None
        return context
