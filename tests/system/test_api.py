"""Login, schema, catalogue, uploads (resumed after an interruption, refused when bad)."""

from __future__ import annotations

import hashlib
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.system.conftest import (
    BASE_URL,
    TUS,
    Api,
    tus_create,
    tus_metadata,
    tus_offset,
    tus_patch,
    unique,
)


def test_token_login(owner_api, anonymous_api):
    bad = requests.post(
        f"{BASE_URL}/api/v1/auth/token/",
        data={"username": "nobody-" + unique("x").split()[1], "password": "wrong"},
        timeout=30,
    )
    assert bad.status_code == 400, bad.status_code
    assert "token" not in bad.json()
    assert owner_api.get("/api/v1/projects/").status_code == 200
    assert anonymous_api.get("/api/v1/projects/").status_code in (401, 403)
    forged = Api("0" * 40)
    assert forged.get("/api/v1/projects/").status_code in (401, 403)


def test_openapi_schema(owner_api):
    response = owner_api.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200, response.status_code
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/projects/", "/api/v1/jobs/", "/api/v1/datasets/{id}/"):
        assert path in schema["paths"], path


def test_catalogue_creation(owner_api, project):
    beamtime = owner_api.create(
        "beamtimes", project=project["id"], facility="Diamond", beamline="I12", proposal="SYS-1"
    )
    sample = owner_api.create(
        "samples", project=project["id"], name=unique("NMC811 DIT"), material="NMC811"
    )
    cell = owner_api.create(
        "cells", project=project["id"], name=unique("DIT-1"), cathode=sample["id"]
    )
    state = owner_api.create(
        "charge-states", project=project["id"], cell=cell["id"], state="charged"
    )
    for collection, obj in (
        ("beamtimes", beamtime),
        ("samples", sample),
        ("cells", cell),
        ("charge-states", state),
    ):
        got = owner_api.get(f"/api/v1/{collection}/{obj['id']}/")
        assert got.status_code == 200, (collection, got.status_code)
        assert got.json()["id"] == obj["id"]
    listed = owner_api.get("/api/v1/cells/", params={"project": project["id"]}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert cell["id"] in [row["id"] for row in rows]


def _interrupted_patch(location: str, token: str, offset: int, chunk: bytes, sent: int) -> None:
    """Send a PATCH announcing ``len(chunk)`` bytes, write only ``sent`` of them, then drop
    the connection, as a network failure mid-upload would."""
    url = urlsplit(location if location.startswith("http") else BASE_URL + location)
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=30)
    try:
        head = (
            f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Token {token}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(chunk)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + chunk[:sent])
    finally:
        sock.close()


def test_tus_upload_interrupted_and_resumed(owner_api, project, twin_dir):
    path = twin_dir / "xct" / "dit_charged.nxs"
    data = path.read_bytes()
    created = tus_create(
        owner_api,
        len(data),
        filename=path.name,
        project=project["id"],
        dataset_kind="xct_projections",
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    first = len(data) // 3
    assert tus_patch(owner_api, location, 0, data[:first]).status_code == 204
    token = owner_api.session.headers["Authorization"].split()[1]
    _interrupted_patch(location, token, first, data[first:], sent=len(data) // 3)
    # The server keeps what arrived (all or part of it); the client resumes from the offset
    # HEAD reports. The server may still be storing the broken request's bytes: a PATCH then
    # gets 423 (the upload is being written) or 409 (stale offset), and the client asks again.
    offset = tus_offset(owner_api, location)
    assert first <= offset <= len(data)
    response = None
    deadline = time.monotonic() + 120
    while offset < len(data):
        response = tus_patch(owner_api, location, offset, data[offset : offset + (1 << 20)])
        if response.status_code in (409, 423) and time.monotonic() < deadline:
            time.sleep(2)
            offset = tus_offset(owner_api, location)
            continue
        assert response.status_code == 204, (response.status_code, response.text)
        offset = int(response.headers["Upload-Offset"])
    assert response is not None, "the interrupted PATCH cannot have completed the upload"
    dataset_id = int(response.headers["CorreLi-Dataset-Id"])
    dataset = owner_api.get(f"/api/v1/datasets/{dataset_id}/").json()
    assert dataset["sha256"] == hashlib.sha256(data).hexdigest()
    assert dataset["size"] == len(data)
    assert dataset["status"] == "ready", dataset
    download = owner_api.get(f"/api/v1/datasets/{dataset_id}/download/")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == dataset["sha256"]


def test_oversized_upload_declaration_is_413(owner_api, project):
    response = tus_create(
        owner_api, 10**18, filename="huge.h5", project=project["id"], dataset_kind="other"
    )
    assert response.status_code == 413, (response.status_code, response.text)


@pytest.mark.parametrize(
    "headers",
    [
        {"Upload-Length": "a lot"},
        {"Upload-Length": "-5"},
        {"Upload-Length": "10", "Upload-Metadata": "filename not-base64!!"},
        {"Upload-Length": "10", "Upload-Metadata": "no-value-and-then,,"},
        {"Upload-Length": "10"},  # no project in the metadata
    ],
)
def test_malformed_tus_is_400(owner_api, project, headers):
    headers = {**TUS, **headers}
    if headers.get("Upload-Metadata") is None and "Upload-Length" in headers:
        if headers["Upload-Length"].isdigit():
            headers["Upload-Metadata"] = tus_metadata(filename="x.csv")
    response = owner_api.post("/api/v1/uploads/", headers=headers)
    assert response.status_code == 400, (headers, response.status_code, response.text)


def test_patch_at_wrong_offset_is_409_and_bad_content_type_415(owner_api, project):
    created = tus_create(
        owner_api, 100, filename="x.csv", project=project["id"], dataset_kind="other"
    )
    location = created.headers["Location"]
    assert tus_patch(owner_api, location, 7, b"x" * 10).status_code == 409
    response = owner_api.patch(
        location,
        data=b"x",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert owner_api.delete(location, headers=TUS).status_code == 204
