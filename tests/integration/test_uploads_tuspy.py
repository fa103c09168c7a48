"""The tus endpoint against the real ``tuspy`` client over HTTP (pytest-django's live server;
PostgreSQL under CI): an upload whose connection drops part-way resumes and completes with the
right sha256, and a truncated HDF5 file is stored but rejected with a clear message."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from tusclient import client as tus_client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def analyst_token(factories):
    from rest_framework.authtoken.models import Token

    owner = factories.make_user("tus-owner")
    project = factories.make_project(owner, name="Beamtime uploads")
    analyst = factories.make_user("tus-analyst")
    factories.add_member(project, analyst, "analyst")
    return project, Token.objects.create(user=analyst).key


def events_file(path, n_events: int) -> bytes:
    from analysis_engine.io.hexitec import write_hexitec_events

    rng = np.random.default_rng(11)
    write_hexitec_events(
        path,
        frame=np.sort(rng.integers(0, 50_000, n_events)),
        row=rng.integers(0, 80, n_events),
        col=rng.integers(0, 80, n_events),
        energy_kev=rng.uniform(5, 120, n_events),
    )
    return path.read_bytes()


def send_partial_patch(upload_url: str, token: str, body: bytes, announced: int) -> None:
    """A PATCH that announces ``announced`` bytes, sends ``body`` and drops the connection."""
    parts = urlsplit(upload_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("PATCH", parts.path)
    for name, value in {
        "Authorization": f"Token {token}",
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(announced),
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body)
    connection.sock.close()  # the line goes dead mid-body


def server_offset(upload_url: str, token: str) -> int:
    response = requests.head(
        upload_url, headers={"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    )
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def test_interrupted_upload_resumes_with_tuspy(live_server, analyst_token, tmp_path):
    from catalogue.models import Dataset

    project, token = analyst_token
    path = tmp_path / "events_region2.h5"
    content = events_file(path, 400_000)  # about 3.6 MB
    endpoint = f"{live_server.url}/api/v1/uploads/"
    client = tus_client.TusClient(endpoint, headers={"Authorization": f"Token {token}"})
    metadata = {
        "filename": path.name,
        "project": str(project.pk),
        "dataset_kind": "xcs_events",
        "region": "2",
    }
    uploader = client.uploader(str(path), chunk_size=len(content), metadata=metadata)
    uploader.set_url(uploader.create_url())  # tus creation; nothing sent yet
    upload_url = uploader.url

    sent = 1_500_000
    send_partial_patch(upload_url, token, content[:sent], announced=len(content))
    deadline = time.monotonic() + 20
    while server_offset(upload_url, token) != sent and time.monotonic() < deadline:
        time.sleep(0.1)  # the server thread notices the dead connection and records the bytes
    assert server_offset(upload_url, token) == sent
    assert not Dataset.objects.exists()

    # a fresh client resumes from the URL: tuspy asks HEAD for the offset and sends the rest
    resumed = client.uploader(str(path), url=upload_url, chunk_size=1_000_000)
    assert resumed.offset == sent
    resumed.upload()

    state = requests.get(upload_url, headers={"Authorization": f"Token {token}"}).json()
    dataset = Dataset.objects.get(pk=state["dataset"])
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert (dataset.size, dataset.status, dataset.kind, dataset.region) == (
        len(content),
        "ready",
        "xcs_events",
        2,
    )
    assert dataset.metadata["events"] == 400_000
    with dataset.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == dataset.sha256
    api = requests.get(
        f"{live_server.url}/api/v1/datasets/{dataset.pk}/",
        headers={"Authorization": f"Token {token}"},
    ).json()
    assert api["sha256"] == dataset.sha256 and api["status"] == "ready"


def test_truncated_hdf5_is_rejected_with_a_clear_message(live_server, analyst_token, tmp_path):
    from catalogue.models import Dataset

    project, token = analyst_token
    whole = events_file(tmp_path / "whole.h5", 50_000)
    path = tmp_path / "cut_transfer.h5"
    path.write_bytes(whole[: len(whole) // 2])
    client = tus_client.TusClient(
        f"{live_server.url}/api/v1/uploads/", headers={"Authorization": f"Token {token}"}
    )
    uploader = client.uploader(
        str(path),
        chunk_size=100_000,
        metadata={"filename": path.name, "project": str(project.pk), "dataset_kind": "xcs_events"},
    )
    uploader.upload()

    state = requests.get(uploader.url, headers={"Authorization": f"Token {token}"}).json()
    assert state["status"] == "complete" and state["dataset_status"] == "rejected"
    assert "cut_transfer.h5" in state["dataset_status_message"]
    assert "truncated" in state["dataset_status_message"]
    dataset = Dataset.objects.get(pk=state["dataset"])
    assert dataset.status == "rejected"
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with dataset.file.open("rb") as fh:
        assert fh.read() == path.read_bytes()  # the rejected file is kept as received


def test_metadata_reaches_the_server_as_sent(live_server, analyst_token, tmp_path):
    """tuspy's Upload-Metadata encoding (base64 of UTF-8) round-trips, non-ASCII included."""
    project, token = analyst_token
    path = tmp_path / "Spektren_Ångström.csv"
    path.write_text("cycle,charge_capacity_mah_g,discharge_capacity_mah_g\n1,201.5,195.0\n")
    client = tus_client.TusClient(
        f"{live_server.url}/api/v1/uploads/", headers={"Authorization": f"Token {token}"}
    )
    uploader = client.uploader(
        str(path), metadata={"filename": path.name, "project": str(project.pk)}
    )
    uploader.upload()
    head = requests.head(
        uploader.url, headers={"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    )
    pairs = dict(item.split(" ") for item in head.headers["Upload-Metadata"].split(","))
    assert base64.b64decode(pairs["filename"]).decode() == path.name
    state = requests.get(uploader.url, headers={"Authorization": f"Token {token}"}).json()
    assert state["filename"] == path.name and state["dataset_status"] == "ready"
