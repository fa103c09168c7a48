"""Pages: what a review link's holder sees (no login), and the owner's create/revoke forms."""

from __future__ import annotations

import json
from datetime import timedelta

from catalogue.models import Cell, Sample
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST
from jobs import reports
from jobs.models import Result
from projects import store
from projects.permissions import get_for_user_or_404

from reviews import services
from reviews.models import DOWNLOADS, ReviewLink, ReviewTarget

TARGET_MODELS = {
    ReviewTarget.RESULT: Result,
    ReviewTarget.CELL_REPORT: Cell,
    ReviewTarget.SAMPLE_REPORT: Sample,
}


def _private(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: keep it out of caches, search engines and Referer headers.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _report(link: ReviewLink) -> tuple[dict, str, str]:
    if link.target == ReviewTarget.CELL_REPORT:
        obj = link.cell
        data, title = reports.build_cell_report(obj), f"Comparison report: cell {obj.name}"
    else:
        obj = link.sample
        data, title = reports.build_sample_report(obj), f"Comparison report: sample {obj.name}"
    basename = f"correli_report_{slugify(obj.name) or obj.pk}"
    return data, title, basename


@require_GET
def open_link(request, token: str):
    """The one object the link shows."""
    link = services.resolve(token, request, event="open")
    context = {
        "link": link,
        "token": token,
        "downloads": [
            (key, label) for key, label in DOWNLOADS[link.target].items() if link.may_download(key)
        ],
    }
    if link.target == ReviewTarget.RESULT:
        result = link.result
        context.update(
            {
                "result": result,
                "figures": result.figures,
                "summary_json": json.dumps(result.summary, indent=2),
                "provenance_json": json.dumps(result.provenance, indent=2),
            }
        )
        return _private(render(request, "reviews/result.html", context))
    data, title, _ = _report(link)
    context.update(
        {"report": data, "tables": data["tables"], "title": title, "figures": data["figures"]}
    )
    return _private(render(request, "reviews/report.html", context))


@require_GET
def download(request, token: str, what: str):
    """A download the owner ticked; anything else is 404 (as if the link did not exist)."""
    link = services.resolve(token, request, event=f"download {what}")
    if not link.may_download(what):
        raise Http404(services.NOT_FOUND)
    if link.target == ReviewTarget.RESULT:
        result = link.result
        if what == "summary":
            response = HttpResponse(
                json.dumps(result.summary, indent=2), content_type="application/json"
            )
            response["Content-Disposition"] = f'attachment; filename="result_{result.pk}.json"'
            return _private(response)
        if not result.output_file:
            raise Http404("This result has no output file.")
        return _private(store.download_response(result.output_file))
    data, title, basename = _report(link)
    if what == "html":
        response = HttpResponse(
            reports.render_offline_html(data, title=title), content_type="text/html"
        )
    else:
        response = HttpResponse(
            reports.report_zip(data, title=title, basename=basename),
            content_type="application/zip",
        )
    response["Content-Disposition"] = f'attachment; filename="{basename}.{what}"'
    return _private(response)


def _back(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@login_required
@require_POST
def create(request, target: str, pk: int):
    """The owner's form on a result or report page: create a link, show it once as a message."""
    if target not in TARGET_MODELS:
        raise Http404("Unknown review target.")
    obj = get_for_user_or_404(TARGET_MODELS[target].objects.all(), request.user, pk=pk)
    try:
        days = float(request.POST.get("expires_in_days") or services.DEFAULT_DAYS)
    except ValueError:
        days = -1
    try:
        if not days > 0:
            raise services.ReviewLinkError("The lifetime must be a positive number of days.")
        link = services.create_link(
            request.user,
            obj,
            downloads=request.POST.getlist("downloads"),
            expires_at=timezone.now() + timedelta(days=days),
            note=request.POST.get("note", ""),
        )
    except services.ReviewLinkError as exc:
        messages.error(request, str(exc))
    else:
        url = request.build_absolute_uri(link.path)
        messages.success(
            request, f"Review link created (until {link.expires_at:%Y-%m-%d %H:%M} UTC): {url}"
        )
    return redirect(_back(request, "/"))


@login_required
@require_POST
def revoke(request, pk: int):
    link = get_for_user_or_404(ReviewLink.objects.all(), request.user, pk=pk)
    services.revoke(link, request.user)
    messages.success(request, f"Review link #{link.pk} revoked.")
    return redirect(_back(request, "/"))
