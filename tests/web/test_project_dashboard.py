"""The project dashboard leads to each cell's pipeline and comparison report."""

import pytest
from jobs.engine_registry import PIPELINE_KIND
from jobs.models import AnalysisJob, JobStatus

pytestmark = pytest.mark.django_db


def test_dashboard_shows_pipeline_state_and_report_links(
    client_as, owner, viewer, project, factories
):
    cell = factories.make_cell(project, name="DIT-1")
    other = factories.make_cell(project, name="SC-1")
    AnalysisJob.objects.create(
        project=project, kind=PIPELINE_KIND, cell=cell, status=JobStatus.SUCCEEDED, job_key="k" * 64
    )

    html = client_as(owner).get(f"/projects/{project.pk}/").content.decode()
    assert "Analysis and reports" in html
    assert f"/jobs/cells/{cell.pk}/report/" in html and f"/jobs/cells/{other.pk}/report/" in html
    assert f"/jobs/samples/{cell.cathode_id}/report/" in html
    assert "Succeeded" in html
    assert f"/jobs/cells/{other.pk}/run/" in html  # never run: an editor gets the run button

    html = client_as(viewer).get(f"/projects/{project.pk}/").content.decode()
    assert f"/jobs/cells/{cell.pk}/report/" in html
    assert f"/jobs/cells/{other.pk}/run/" not in html  # viewers review, they do not run


def test_login_lands_on_the_only_project_or_the_list(client, owner, project, factories):
    client.force_login(owner)
    assert client.get("/home/").url == f"/projects/{project.pk}/"
    factories.make_project(owner=owner)
    assert client.get("/home/").url == "/"
