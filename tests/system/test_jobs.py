"""Jobs over HTTP: a single-stage round trip, the whole-cell pipeline on the small twin with
its report and CSV downloads, and who may see and do what (cross-project 404, viewer 403).

Expected values come from the twin's ``ground_truth.json`` (the porosity planted in each depth
region, written by the generator, not by the analysis), with the tolerance the integration
suite uses (4 vol% absolute; measured deviations are below 1 vol%).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile

import pytest

from tests.system.conftest import (
    BrowserSession,
    Compose,
    tus_create,
    unique,
    wait_for_job,
    wait_until,
)

POROSITY_TOL = 0.04


def _results(api, job: dict) -> list[dict]:
    out = []
    for item in job.get("results") or []:
        rid = item["id"] if isinstance(item, dict) else int(str(item).rstrip("/").split("/")[-1])
        response = api.get(f"/api/v1/results/{rid}/")
        assert response.status_code == 200
        out.append(response.json())
    return out


@pytest.fixture(scope="module")
def events_job(owner_api, twin_cell) -> dict:
    dataset_id = twin_cell["datasets"]["xcsi/dit_charged_region1.h5"]
    response = owner_api.post(
        "/api/v1/jobs/", json={"kind": "events", "inputs": [dataset_id], "force": True}
    )
    assert response.status_code == 202, (response.status_code, response.text)
    return wait_for_job(owner_api, response.json()["id"], timeout_s=600)


def test_job_round_trip(owner_api, events_job):
    assert events_job["status"] == "succeeded", events_job.get("error")
    assert events_job["progress"] == pytest.approx(1.0)
    (result,) = _results(owner_api, events_job)
    assert result["kind"] == "events"
    assert result["summary"]["events_counted"] > 0
    figure = owner_api.get(f"/api/v1/results/{result['id']}/figure/")
    assert figure.status_code == 200 and "data" in figure.json()
    download = owner_api.get(f"/api/v1/results/{result['id']}/download/")
    assert download.status_code == 200 and len(download.content) > 0


@pytest.fixture(scope="module")
def pipeline_job(owner_api, twin_cell) -> dict:
    """The whole-cell pipeline of the twin's DIT cell. On the compose stack the worker is
    crashed (SIGKILL from the host) while the pipeline is running: its unacknowledged task
    must be handed out again after the broker's visibility timeout and the pipeline finish."""
    response = owner_api.post(
        "/api/v1/jobs/",
        json={
            "kind": "pipeline",
            "cell": twin_cell["cell"],
            "parameters": twin_cell["pipeline_parameters"],
        },
    )
    assert response.status_code in (200, 202), (response.status_code, response.text)
    job_id = response.json()["id"]
    crashed = None
    command = os.environ.get("CORRELI_SYSTEM_COMPOSE")
    if command:

        def under_way():
            body = owner_api.get(f"/api/v1/jobs/{job_id}/").json()
            return body if body["status"] != "queued" and body["progress"] >= 0.25 else None

        crashed = wait_until(under_way, timeout_s=900, what="pipeline under way", interval_s=1)
        if crashed["status"] == "running":
            Compose(command).crash("worker")
    return {**wait_for_job(owner_api, job_id), "crashed_at": crashed}


def _owner_browser() -> BrowserSession:
    return BrowserSession(
        os.environ.get("CORRELI_SYSTEM_USER", "demo"),
        os.environ.get("CORRELI_SYSTEM_PASSWORD", "correli-demo"),
    )


def test_whole_cell_pipeline_with_report_and_csv(owner_api, twin_cell, pipeline_job):
    assert pipeline_job["status"] == "succeeded", pipeline_job.get("error")
    browser = _owner_browser()
    cell = twin_cell["cell"]
    page = browser.get(f"/jobs/cells/{cell}/report/")
    assert page.status_code == 200
    assert "DIT-1" in page.text
    table = browser.get(f"/jobs/cells/{cell}/report/porosity.csv")
    assert table.status_code == 200
    assert table.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    planted = twin_cell["truth"]["porosity_by_region"]
    assert sorted((r["state"], int(r["region"])) for r in rows) == [
        (s, r) for s in ("charged", "discharged") for r in (1, 2, 3)
    ]
    for row in rows:
        got = float(row["porosity_vol_pct"]) / 100
        assert got == pytest.approx(planted[int(row["region"]) - 1], abs=POROSITY_TOL), row
    for state in ("charged", "discharged"):
        by_region = {
            int(r["region"]): float(r["porosity_vol_pct"]) for r in rows if r["state"] == state
        }
        assert by_region[1] > by_region[2] > by_region[3], (state, by_region)  # DIT gradient
    archive = browser.get(f"/jobs/cells/{cell}/report.zip")
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert any(name.endswith("porosity.csv") for name in names), names


def test_worker_crashed_mid_pipeline_and_the_pipeline_completed(pipeline_job, compose):
    crashed_at = pipeline_job["crashed_at"]
    assert crashed_at is not None
    assert crashed_at["status"] == "running", f"the pipeline ended before the crash: {crashed_at}"
    assert pipeline_job["status"] == "succeeded", pipeline_job.get("error")


def test_cross_project_objects_are_404(owner_api, other_api, other_user, twin_cell, events_job):
    (result,) = _results(owner_api, events_job)
    dataset = next(iter(twin_cell["datasets"].values()))
    paths = [
        f"/api/v1/projects/{twin_cell['project']}/",
        f"/api/v1/samples/{twin_cell['sample']}/",
        f"/api/v1/cells/{twin_cell['cell']}/",
        f"/api/v1/charge-states/{twin_cell['charge_states']['charged']}/",
        f"/api/v1/beamtimes/{twin_cell['beamtime']}/",
        f"/api/v1/datasets/{dataset}/",
        f"/api/v1/datasets/{dataset}/download/",
        f"/api/v1/jobs/{events_job['id']}/",
        f"/api/v1/results/{result['id']}/",
        f"/api/v1/results/{result['id']}/figure/",
        f"/api/v1/results/{result['id']}/download/",
    ]
    for path in paths:
        assert owner_api.get(path).status_code == 200, path
        assert other_api.get(path).status_code == 404, path
    # writes to another project's objects are 404 too (never 403: existence is not revealed)
    assert other_api.patch(paths[2], json={"notes": "x"}).status_code == 404
    assert other_api.post(f"/api/v1/jobs/{events_job['id']}/cancel/").status_code == 404
    job = other_api.post("/api/v1/jobs/", json={"kind": "events", "inputs": [dataset]})
    assert job.status_code in (400, 404), job.status_code
    upload = tus_create(
        other_api, 10, filename="x.csv", project=twin_cell["project"], dataset_kind="other"
    )
    assert upload.status_code == 404, upload.status_code
    browser = BrowserSession(*other_user)
    cell = twin_cell["cell"]
    for path in (
        f"/jobs/cells/{cell}/report/",
        f"/jobs/cells/{cell}/report/porosity.csv",
        f"/jobs/cells/{cell}/report.zip",
        f"/jobs/results/{result['id']}/",
    ):
        assert browser.get(path).status_code == 404, path


def test_viewer_may_read_but_not_write(owner_api, other_api, other_user):
    project = owner_api.create("projects", name=unique("viewer check"))
    owner_api.create("memberships", project=project["id"], user=other_user[0], role="viewer")
    sample = owner_api.create(
        "samples", project=project["id"], name=unique("NMC811"), material="NMC811"
    )
    assert other_api.get(f"/api/v1/samples/{sample['id']}/").status_code == 200
    write = other_api.post(
        "/api/v1/samples/", json={"project": project["id"], "name": "no", "material": "NMC811"}
    )
    assert write.status_code == 403, write.status_code
    assert (
        other_api.patch(f"/api/v1/samples/{sample['id']}/", json={"notes": "x"}).status_code == 403
    )
    upload = tus_create(
        other_api, 10, filename="x.csv", project=project["id"], dataset_kind="other"
    )
    assert upload.status_code == 403, upload.status_code
