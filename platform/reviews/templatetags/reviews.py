"""``{% review_links_panel obj %}``: the owner's "share with a referee" panel on a result or
report page (renders nothing for other roles)."""

from django import template
from projects.permissions import is_owner

from reviews.models import DOWNLOADS, ReviewLink
from reviews.services import DEFAULT_DAYS
from reviews.views import TARGET_MODELS

register = template.Library()


@register.inclusion_tag("reviews/_panel.html", takes_context=True)
def review_links_panel(context, obj):
    request = context["request"]
    target = next(t for t, model in TARGET_MODELS.items() if isinstance(obj, model))
    owner = is_owner(request.user, obj.project_id)
    field = {"result": "result", "cell_report": "cell", "sample_report": "sample"}[target]
    links = ReviewLink.objects.filter(target=target, **{field: obj}) if owner else []
    return {
        "owner": owner,
        "target": target,
        "obj": obj,
        "links": links,
        "choices": DOWNLOADS[target].items(),
        "default_days": DEFAULT_DAYS,
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
