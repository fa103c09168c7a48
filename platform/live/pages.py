"""Pages of live acquisitions: the list and the live map page (updated by push)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from projects.permissions import get_for_user_or_404, scope_queryset

from .models import LiveAcquisition


@login_required
def acquisition_list(request):
    acquisitions = scope_queryset(LiveAcquisition.objects.select_related("project"), request.user)
    return render(request, "live/acquisition_list.html", {"acquisitions": acquisitions[:200]})


@login_required
def acquisition_detail(request, pk: int):
    acq = get_for_user_or_404(
        LiveAcquisition.objects.select_related("project", "spectra"), request.user, pk=pk
    )
    return render(
        request,
        "live/acquisition_detail.html",
        {"acq": acq, "summary_json": json.dumps({"id": acq.pk, **acq.summary})},
    )
