"""The REST flow through a real WSGI server (``manage.py runserver``, what ``./bin/run``
serves), not DRF's test client: token, a tus upload interrupted and resumed with its sha256
checked, a job round trip, cross-project 404 on everything, viewer 403, and the inputs that
used to answer 500 (issue 18).
"""

from __future__ import annotations

import hashlib
import time

import pytest
import requests
from uploads.tus import encode_metadata

from tests.web.live_server_fixtures import wsgi_server  # noqa: F401 - fixture
from tests.web.test_uploads import events_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TUS = {"Tus-Resumable": "1.0.0"}
PASSWORD = "correli-live-pw-7"


@pytest.fixture
def cast(transactional_db, factories):
    """owner and analyst of ``project``, a viewer, and an outsider with a project of their own."""
    users = {}
    for name in ("owner", "analyst", "viewer", "outsider"):
        user = factories.make_user(f"live-{name}")
        user.set_password(PASSWORD)
        user.save()
        users[name] = user
    project = factories.make_project(users["owner"], name="Live project")
    factories.add_member(project, users["analyst"], "analyst")
    factories.add_member(project, users["viewer"], "viewer")
    other = factories.make_project(users["outsider"], name="Outsider's project")
    return users, project, other


def session_for(server, username: str) -> requests.Session:
    response = requests.post(
        server.url + "/api/v1/auth/token/",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.headers["Authorization"] = f"Token {response.json()['token']}"
    return session


def test_rest_flow_through_runserver(wsgi_server, cast):  # noqa: F811
    users, project, other = cast
    url = wsgi_server.url
    analyst = session_for(wsgi_server, "live-analyst")
    viewer = session_for(wsgi_server, "live-viewer")
    outsider = session_for(wsgi_server, "live-outsider")

    # tus: create, send half, "lose the connection", ask where to resume, send the rest
    body = events_bytes(4000, seed=5)
    metadata = {"filename": "events.h5", "project": str(project.pk), "dataset_kind": "xcs_events"}
    created = analyst.post(
        url + "/api/v1/uploads/",
        headers={
            **TUS,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": encode_metadata(metadata),
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    half = len(body) // 2
    patch_headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
    first = analyst.patch(
        location, data=body[:half], headers={**patch_headers, "Upload-Offset": "0"}, timeout=30
    )
    assert first.status_code == 204 and first.headers["Upload-Offset"] == str(half)
    head = analyst.head(location, headers=TUS, timeout=30)
    assert head.headers["Upload-Offset"] == str(half)
    last = analyst.patch(
        location,
        data=body[half:],
        headers={**patch_headers, "Upload-Offset": head.headers["Upload-Offset"]},
        timeout=30,
    )
    assert last.status_code == 204, last.text
    dataset_id = int(last.headers["CorreLi-Dataset-Id"])
    dataset = analyst.get(f"{url}/api/v1/datasets/{dataset_id}/", timeout=30).json()
    assert dataset["sha256"] == hashlib.sha256(body).hexdigest()
    assert (dataset["size"], dataset["status"], dataset["kind"]) == (
        len(body),
        "ready",
        "xcs_events",
    )

    # job round trip (202 + Location, then poll)
    submitted = analyst.post(
        url + "/api/v1/jobs/", json={"kind": "events", "inputs": [dataset_id]}, timeout=300
    )
    assert submitted.status_code in (200, 202), submitted.text
    job_url = submitted.headers["Location"]
    assert job_url.endswith(f"/api/v1/jobs/{submitted.json()['id']}/")
    deadline = time.monotonic() + 300
    while True:
        job = analyst.get(job_url, timeout=30).json()
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    result_id = job["results"][0]["id"]
    assert analyst.get(f"{url}/api/v1/results/{result_id}/", timeout=30).status_code == 200
    again = analyst.post(
        url + "/api/v1/jobs/", json={"kind": "events", "inputs": [dataset_id]}, timeout=60
    )
    assert again.status_code == 200 and again.json()["id"] == job["id"]

    # a stranger gets 404 on every object, never 403
    for path in (
        f"/api/v1/projects/{project.pk}/",
        f"/api/v1/datasets/{dataset_id}/",
        f"/api/v1/datasets/{dataset_id}/download/",
        f"/api/v1/jobs/{job['id']}/",
        f"/api/v1/results/{result_id}/",
        f"/api/v1/results/{result_id}/download/",
        f"/api/v1/results/{result_id}/figure/",
    ):
        assert outsider.get(url + path, timeout=30).status_code == 404, path
    assert outsider.head(location, headers=TUS, timeout=30).status_code == 404

    # a viewer reads but cannot run jobs or upload (403)
    assert viewer.get(f"{url}/api/v1/datasets/{dataset_id}/", timeout=30).status_code == 200
    refused = viewer.post(
        url + "/api/v1/jobs/",
        json={"kind": "events", "inputs": [dataset_id], "force": True},
        timeout=30,
    )
    assert refused.status_code == 403
    upload = viewer.post(
        url + "/api/v1/uploads/",
        headers={**TUS, "Upload-Length": "3", "Upload-Metadata": encode_metadata(metadata)},
        timeout=30,
    )
    assert upload.status_code == 403


def test_inputs_that_answered_500_now_answer_4xx(wsgi_server, cast):  # noqa: F811
    users, project, _ = cast
    url = wsgi_server.url
    analyst = session_for(wsgi_server, "live-analyst")
    for path in ("/api/v1/jobs/kinds.json", "/api/v1/datasets/1/download.json"):
        response = analyst.get(url + path, timeout=30)
        assert response.status_code == 404, path
    metadata = encode_metadata({"filename": "a.h5", "project": str(project.pk)})
    bad_length = analyst.post(
        url + "/api/v1/uploads/",
        headers={**TUS, "Upload-Length": "²", "Upload-Metadata": metadata},
        timeout=30,
    )
    assert bad_length.status_code == 400
    bad_project = analyst.post(
        url + "/api/v1/uploads/",
        headers={
            **TUS,
            "Upload-Length": "3",
            "Upload-Metadata": encode_metadata({"filename": "a.h5", "project": "²"}),
        },
        timeout=30,
    )
    assert bad_project.status_code == 400
    nul = analyst.post(
        url + "/api/v1/uploads/",
        headers={
            **TUS,
            "Upload-Length": "3",
            "Upload-Metadata": encode_metadata(
                {"filename": "a\x00.h5", "project": str(project.pk)}
            ),
        },
        timeout=30,
    )
    assert nul.status_code == 400
    anonymous = requests.get(url + "/api/v1/projects/", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Token"
