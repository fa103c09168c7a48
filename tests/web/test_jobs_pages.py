"""Job and result pages: run forms, live-progress markup, comments, role-based buttons."""

from __future__ import annotations

import pytest
from jobs.models import AnalysisJob, Comment, Result

pytestmark = pytest.mark.usefixtures("fake_engine")


@pytest.fixture
def finished_job(
    spectra_dataset, project, analyst, factories, client_as, django_capture_on_commit_callbacks
):
    ds = spectra_dataset(factories, project, li=0.61)
    with django_capture_on_commit_callbacks(execute=True):
        r = client_as(analyst).post(f"/jobs/datasets/{ds.pk}/run/", {"kind": "compton"})
    job = AnalysisJob.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.pk}/"
    return job


def test_analyst_runs_a_job_from_the_dataset_page(
    spectra_dataset, project, analyst, factories, client_as
):
    ds = spectra_dataset(factories, project)
    page = client_as(analyst).get(f"/jobs/datasets/{ds.pk}/run/")
    assert page.status_code == 200
    assert b'id="run-job"' in page.content and b"Compton map" in page.content
    bad = client_as(analyst).post(
        f"/jobs/datasets/{ds.pk}/run/", {"kind": "compton", "parameters": "{not json"}
    )
    assert bad.status_code == 200 and b"Not valid JSON" in bad.content
    unknown = client_as(analyst).post(
        f"/jobs/datasets/{ds.pk}/run/", {"kind": "compton", "parameters": '{"colour": 1}'}
    )
    assert b"no option colour" in unknown.content
    assert not AnalysisJob.objects.exists()


def test_job_page_follows_the_event_stream_and_links_the_result(finished_job, analyst, client_as):
    page = client_as(analyst).get(f"/jobs/{finished_job.pk}/").content.decode()
    assert f'data-job-api="/api/v1/jobs/{finished_job.pk}/"' in page
    assert "js/jobs.js" in page
    result = Result.objects.get(job=finished_job)
    assert f"/jobs/results/{result.pk}/" in page
    assert 'id="cancel-job"' not in page  # finished: nothing to cancel
    listing = client_as(analyst).get("/jobs/").content.decode()
    assert f"/jobs/{finished_job.pk}/" in listing


def test_viewer_sees_results_and_comments_but_no_run_button(
    finished_job, project, viewer, factories, client_as
):
    client = client_as(viewer)
    result = Result.objects.get(job=finished_job)
    page = client.get(f"/jobs/results/{result.pk}/").content.decode()
    assert 'data-figure-name="li_map"' in page and "vendor/plotly.min.js" in page
    r = client.post(f"/jobs/results/{result.pk}/", {"text": "Looks homogeneous"})
    assert r.status_code == 302
    assert Comment.objects.get().author == viewer
    assert "Looks homogeneous" in client.get(f"/jobs/results/{result.pk}/").content.decode()

    ds = finished_job.inputs.get()
    run_page = client.get(f"/jobs/datasets/{ds.pk}/run/").content.decode()
    assert 'id="run-job"' not in run_page and "read-only" in run_page
    assert client.post(f"/jobs/datasets/{ds.pk}/run/", {"kind": "compton"}).status_code == 403
    cell = factories.make_cell(project)
    assert 'id="run-pipeline"' not in client.get(f"/jobs/cells/{cell.pk}/run/").content.decode()
    assert client.post(f"/jobs/cells/{cell.pk}/run/").status_code == 403
    assert AnalysisJob.objects.count() == 1


def test_running_job_shows_cancel_for_analysts_only(
    spectra_dataset, project, analyst, viewer, factories, client_as, api_as
):
    ds = spectra_dataset(factories, project)
    job_id = (
        api_as(analyst)
        .post("/api/v1/jobs/", {"kind": "compton", "inputs": [ds.pk]}, format="json")
        .json()["id"]
    )
    assert 'id="cancel-job"' in client_as(analyst).get(f"/jobs/{job_id}/").content.decode()
    assert 'id="cancel-job"' not in client_as(viewer).get(f"/jobs/{job_id}/").content.decode()


def test_outsider_gets_404_on_every_page(finished_job, outsider, client_as):
    client = client_as(outsider)
    result = Result.objects.get(job=finished_job)
    ds = finished_job.inputs.get()
    for url in (
        f"/jobs/{finished_job.pk}/",
        f"/jobs/results/{result.pk}/",
        f"/jobs/datasets/{ds.pk}/run/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/jobs/results/{result.pk}/", {"text": "hi"}).status_code == 404
    assert f"/jobs/{finished_job.pk}/" not in client.get("/jobs/").content.decode()
