"""Review links (issue 18, "what to build" 6): an owner's signed, expiring, revocable
read-only link to one result or report; the holder sees that object only; every use audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from jobs.models import AnalysisJob, Result
from projects.models import AuditEvent
from reviews import services
from reviews.models import SIGNING_SALT, ReviewLink

pytestmark = pytest.mark.django_db
FIGURE = {"data": [{"type": "heatmap", "z": [[0.7, 0.8]]}], "layout": {"title": {"text": "Li"}}}


@pytest.fixture
def result(project, settings):
    job = AnalysisJob.objects.create(
        project=project, kind="compton", job_key="k", status="succeeded"
    )
    folder = settings.MEDIA_ROOT / "results" / str(project.pk) / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compton.h5").write_bytes(b"\x89HDF\r\n\x1a\nreview")
    return Result.objects.create(
        project=project,
        job=job,
        kind="compton",
        name="Li map, region 1",
        output_file=f"results/{project.pk}/{job.pk}/compton.h5",
        summary={"li_total": 0.731},
        figures={"li_map": FIGURE},
    )


@pytest.fixture
def other_result(project, result):
    return Result.objects.create(
        project=project,
        job=result.job,
        kind="compton",
        name="Other result",
        summary={"li_total": 0.5},
    )


def uses(link):
    return AuditEvent.objects.filter(
        object_type="reviews.reviewlink", object_id=str(link.pk), action="other"
    )


def test_owner_creates_a_link_through_the_api_and_the_holder_sees_that_result_only(
    api_as, owner, result, other_result, client
):
    response = api_as(owner).post(
        "/api/v1/review-links/",
        {"result": result.pk, "downloads": ["summary"], "note": "referee 2"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "active" and body["target"] == "result"
    link = ReviewLink.objects.get(pk=body["id"])
    assert timedelta(days=13) < link.expires_at - timezone.now() <= timedelta(days=14)
    path = body["url"].removeprefix("http://testserver")

    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Li map, region 1" in html and "0.731" in html and "referee 2" in html
    assert "Other result" not in html and "/catalogue/" not in html
    assert page["Referrer-Policy"] == "no-referrer" and "no-store" in page["Cache-Control"]
    assert client.get(path + "download/summary/").json() == {"li_total": 0.731}
    assert client.get(path + "download/hdf5/").status_code == 404  # not ticked
    # the holder is not logged in: nothing else opens
    assert client.get(f"/jobs/results/{other_result.pk}/").status_code == 302
    assert client.get(f"/api/v1/results/{result.pk}/").status_code == 401
    assert client.get("/catalogue/samples/").status_code == 302

    link.refresh_from_db()
    assert link.uses == 3 and link.last_used_at is not None
    events = [e.changes["event"] for e in uses(link).order_by("pk")]
    assert events == ["open", "download summary", "download hdf5"]
    assert all("address" in e.changes for e in uses(link))


def test_ticked_hdf5_download_streams_the_file(owner, result, client):
    link = services.create_link(owner, result, downloads=["hdf5"])
    response = client.get(link.path + "download/hdf5/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89HDF\r\n\x1a\nreview"


def test_expired_and_revoked_links_answer_404_and_are_audited(owner, result, client, api_as):
    link = services.create_link(owner, result)
    assert client.get(link.path).status_code == 200
    ReviewLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(link.path).status_code == 404
    ReviewLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() + timedelta(days=1))
    revoked = api_as(owner).post(f"/api/v1/review-links/{link.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert client.get(link.path).status_code == 404
    assert client.get(link.path + "download/summary/").status_code == 404
    events = [e.changes["event"] for e in uses(link).order_by("pk")]
    assert events == [
        "open",
        "refused (expired): open",
        "refused (revoked): open",
        "refused (revoked): download summary",
    ]


def test_forged_tampered_and_deleted_links_answer_404(owner, result, client, api_as):
    link = services.create_link(owner, result)
    assert link.token == ReviewLink.objects.get(pk=link.pk).token  # stable
    forged = signing.Signer(salt=SIGNING_SALT).sign_object({"id": link.pk, "nonce": "guess"})
    unsigned = signing.Signer(salt="another-salt").sign_object({"id": link.pk, "nonce": link.nonce})
    for token in (forged, unsigned, link.token[:-2] + "xx", "nonsense"):
        assert client.get(f"/review/{token}/").status_code == 404
    assert api_as(owner).delete(f"/api/v1/review-links/{link.pk}/").status_code == 204
    assert client.get(link.path).status_code == 404


def test_only_owners_create_or_see_links(api_as, analyst, viewer, outsider, owner, result):
    for user in (analyst, viewer):
        response = api_as(user).post("/api/v1/review-links/", {"result": result.pk}, format="json")
        assert response.status_code == 403, user
    response = api_as(outsider).post("/api/v1/review-links/", {"result": result.pk}, format="json")
    assert response.status_code == 400  # another project's result does not exist for them
    link = services.create_link(owner, result)
    for user in (analyst, viewer, outsider):
        assert api_as(user).get(f"/api/v1/review-links/{link.pk}/").status_code == 404
        assert api_as(user).post(f"/api/v1/review-links/{link.pk}/revoke/").status_code == 404


@pytest.mark.parametrize(
    "payload,message",
    [
        ({}, "exactly one"),
        ({"downloads": ["html"]}, "Unknown download html"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "future"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "at most 90 days"),
    ],
)
def test_bad_link_requests_are_400(api_as, owner, result, payload, message):
    body = {"result": result.pk, **payload} if payload else {}
    response = api_as(owner).post("/api/v1/review-links/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json())


def test_report_link_shows_the_cell_report_and_allows_only_ticked_downloads(
    owner, project, factories, client
):
    cell = factories.make_cell(project)
    link = services.create_link(owner, cell, downloads=["html"])
    page = client.get(link.path)
    assert page.status_code == 200 and f"cell {cell.name}" in page.content.decode()
    html = client.get(link.path + "download/html/")
    assert html.status_code == 200 and html["Content-Type"] == "text/html"
    assert client.get(link.path + "download/zip/").status_code == 404


def test_owner_creates_and_revokes_from_the_result_page(client_as, owner, viewer, result):
    page = client_as(owner).get(f"/jobs/results/{result.pk}/").content.decode()
    assert 'id="review-link-form"' in page
    response = client_as(owner).post(
        f"/review/new/result/{result.pk}/",
        {
            "note": "referee 1",
            "expires_in_days": "2",
            "downloads": ["hdf5"],
            "next": f"/jobs/results/{result.pk}/",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/jobs/results/{result.pk}/"
    link = ReviewLink.objects.get()
    assert link.downloads == ["hdf5"] and link.note == "referee 1"
    page = client_as(owner).get(f"/jobs/results/{result.pk}/").content.decode()
    assert link.path in page
    assert client_as(owner).post(f"/review/links/{link.pk}/revoke/").status_code == 302
    link.refresh_from_db()
    assert link.state == "revoked"
    assert (
        'id="review-link-form"'
        not in client_as(viewer).get(f"/jobs/results/{result.pk}/").content.decode()
    )
    assert client_as(viewer).post(f"/review/new/result/{result.pk}/").status_code == 403


def test_report_page_offers_the_panel_to_owners_only(client_as, owner, analyst, project, factories):
    cell = factories.make_cell(project)
    page = client_as(owner).get(f"/jobs/cells/{cell.pk}/report/").content.decode()
    assert f'action="/review/new/cell_report/{cell.pk}/"' in page
    page = client_as(analyst).get(f"/jobs/cells/{cell.pk}/report/").content.decode()
    assert "review-link-form" not in page


def test_link_filters_do_not_tell_foreign_ids_from_missing_ones(api_as, owner, outsider, result):
    link = services.create_link(owner, result)
    api = api_as(owner)
    assert [
        r["id"] for r in api.get(f"/api/v1/review-links/?result={result.pk}").json()["results"]
    ] == [link.pk]
    foreign = api_as(outsider).get(f"/api/v1/review-links/?result={result.pk}")
    missing = api_as(outsider).get("/api/v1/review-links/?result=987654")
    assert foreign.status_code == missing.status_code == 200
    assert foreign.json()["results"] == missing.json()["results"] == []
