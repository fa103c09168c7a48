"""Review links end to end in real Chromium: an owner creates a link on the result page, a
referee with no account opens it (the result's figure renders, only the ticked download is
offered, nothing else of the platform opens), then expiry and revocation make it 404.

Runs against pytest-django's live server, with Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.test_jobs_e2e import _user, browser, login  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
FIGURE = {
    "data": [{"type": "heatmap", "z": [[0.71, 0.72], [0.73, 0.74]]}],
    "layout": {"title": {"text": "Li stoichiometry"}},
}


@pytest.fixture
def shared_result(factories, settings):
    from jobs.models import AnalysisJob, Result

    owner = _user(factories, "rita")
    project = factories.make_project(owner, name="Referee review")
    job = AnalysisJob.objects.create(
        project=project, kind="compton", job_key="e2e", status="succeeded"
    )
    folder = settings.MEDIA_ROOT / "results" / str(project.pk) / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compton.h5").write_bytes(b"\x89HDF\r\n\x1a\nfor the referee")
    result = Result.objects.create(
        project=project,
        job=job,
        kind="compton",
        name="Li map of region 1",
        output_file=f"results/{project.pk}/{job.pk}/compton.h5",
        summary={"li_total": 0.725},
        figures={"li_map": FIGURE},
    )
    hidden = Result.objects.create(
        project=project, job=job, kind="compton", name="Unpublished result"
    )
    return result, hidden


def test_review_link_open_expiry_and_revocation(live_server, browser, shared_result):  # noqa: F811
    from django.utils import timezone
    from projects.models import AuditEvent
    from reviews.models import ReviewLink

    result, hidden = shared_result
    owner_page = login(browser, live_server, "rita")
    owner_page.goto(f"/jobs/results/{result.pk}/")
    form = owner_page.locator("#review-link-form")
    form.locator("input[name=note]").fill("Referee 2")
    form.locator("input[name=expires_in_days]").fill("3")
    form.locator("input[name=downloads][value=hdf5]").check()
    form.locator("button[type=submit]").click()
    owner_page.wait_for_selector("#review-links-table")
    url = owner_page.locator("#review-links-table .review-url").input_value()
    link = ReviewLink.objects.get()
    assert url.endswith(link.path) and link.downloads == ["hdf5"]

    # the referee: a fresh browser context, no login
    referee = browser.new_context(base_url=live_server.url, accept_downloads=True).new_page()
    referee.goto(url)
    assert referee.inner_text("#review-title") == "Li map of region 1"
    referee.wait_for_selector("#figure-li_map[data-rendered='1']", timeout=60_000)
    z = referee.evaluate("document.getElementById('figure-li_map').data[0].z")
    assert z == [[0.71, 0.72], [0.73, 0.74]]
    offered = referee.locator("#review-downloads a").evaluate_all(
        "links => links.map(a => a.dataset.download)"
    )
    assert offered == ["hdf5"]
    with referee.expect_download() as download:
        referee.click("#review-downloads a[data-download=hdf5]")
    assert open(download.value.path(), "rb").read() == b"\x89HDF\r\n\x1a\nfor the referee"
    assert referee.locator("nav.mainnav").count() == 0
    assert "Unpublished result" not in referee.content()
    # nothing else of the platform opens for the holder
    for path in (f"/jobs/results/{hidden.pk}/", "/catalogue/samples/", "/"):
        referee.goto(path)
        assert "/accounts/login/" in referee.url, path
    assert referee.goto(f"{url}download/summary/").status == 404

    # expiry
    ReviewLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert referee.goto(url).status == 404
    ReviewLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert referee.goto(url).status == 200

    # revocation from the owner's result page
    owner_page.goto(f"/jobs/results/{result.pk}/")
    owner_page.click(f"#review-links-table tr[data-link-id='{link.pk}'] button[type=submit]")
    owner_page.wait_for_load_state()
    assert owner_page.inner_text(f"tr[data-link-id='{link.pk}'] .state") == "revoked"
    assert referee.goto(url).status == 404

    events = list(
        AuditEvent.objects.filter(object_type="reviews.reviewlink", action="other")
        .order_by("pk")
        .values_list("changes__event", flat=True)
    )
    assert events[:2] == ["open", "download hdf5"]
    assert "refused (expired): open" in events and events[-1] == "refused (revoked): open"
