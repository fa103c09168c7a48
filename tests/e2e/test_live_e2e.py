"""End to end in real Chromium: the live acquisition page redraws its maps as chunks arrive.

The page is opened once; chunks of a synthetic acquisition are then pushed through the append
service (as the API does) and the page must show the growing counts, the Li map and the event
count of the complete acquisition, with no reload (the navigation counter stays at one).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import override_settings

from tests.e2e.test_jobs_e2e import _user, browser, login  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_live_map_updates_without_reload(live_server, browser, factories):  # noqa: F811
    from live import services

    from analysis_engine.synthetic.hexitec import beamline_spectrum, generate_events

    e = np.arange(0.025, 130.0, 0.05)
    events = generate_events(e, beamline_spectrum(e), counts=2.0, n_frames=1500, seed=4)
    owner = _user(factories, "lena")
    project = factories.make_project(owner, name="Operando NMC811")
    acq = services.create_acquisition(
        project=project, user=owner, name="operando-e2e",
        options={"bin_width_kev": 0.5, "range_kev": [0.0, 130.0], "target_counts_per_pixel": 10},
    )  # fmt: skip

    page = login(browser, live_server, "lena")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    # reached from the navigation: Live -> the acquisition list -> the live page
    page.click("#nav-live")
    page.wait_for_url("**/live/")
    page.click(f"a[href='/live/{acq.pk}/']")
    page.wait_for_url(f"**/live/{acq.pk}/")
    page.wait_for_function("document.querySelector('#live-status') !== null")
    navigations.clear()

    n = len(events.frame)
    cuts = np.linspace(0, n, 5).astype(int)
    seen_counts = []
    with override_settings(CORRELI_LIVE_MAP_INTERVAL_S=0):
        for seq, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            buffer = io.BytesIO()
            np.savez(buffer, frame=events.frame[a:b], row=events.row[a:b], col=events.col[a:b],
                     energy_kev=events.energy_kev[a:b])  # fmt: skip
            services.append_chunk(acq, seq, buffer.getvalue())
            services.process(acq.pk)
            expected = services.LiveAcquisition.objects.get(pk=acq.pk).events_counted
            page.wait_for_function(
                f"Number(document.getElementById('live-acquisition')"
                f".getAttribute('data-events-counted')) === {expected}",
                timeout=20_000,
            )
            seen_counts.append(expected)
        final = services.finish(acq.pk)
    page.wait_for_function(
        "document.getElementById('live-status').textContent.trim() === 'finished'",
        timeout=20_000,
    )
    assert seen_counts == sorted(seen_counts) and seen_counts[0] < seen_counts[-1]
    assert page.get_attribute("#live-li-map", "data-rendered") == "1"
    assert page.get_attribute("#live-counts-map", "data-rendered") == "1"
    shown = int(page.get_attribute("#live-acquisition", "data-events-counted"))
    assert shown == final.events_counted
    assert int(page.inner_text("[data-live=updates]")) >= len(seen_counts)
    assert navigations == []  # never reloaded

    # re-binned in time on the same page: a Li map per slice behind a slider, and Li(t)
    page.fill("#live-time-form input[name=slice_s]", "0.05")
    page.click("#live-time-form button[type=submit]")
    page.wait_for_selector("#live-time-map[data-rendered='1']", timeout=20_000)
    page.wait_for_selector("#live-time-curve[data-rendered='1']", timeout=20_000)
    assert page.locator("#live-time-map .slider-container").count() == 1
    assert "export=csv" in page.get_attribute("#live-time-csv", "href")
    assert navigations == []

    # the final spectra's dataset page links back to the live page
    page.goto(final.spectra.get_absolute_url())
    page.click("#dataset-live")
    page.wait_for_url(f"**/live/{acq.pk}/")
    assert page.inner_text("#live-status").strip() == "finished"
