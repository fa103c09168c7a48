"""The tus 1.0.0 endpoint: creation, PATCH in pieces, offsets, termination, permissions, and
the Dataset a finished upload becomes (sha256, format check, rejected files kept)."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import uuid

import h5py
import numpy as np
import pytest
from catalogue.models import Dataset
from django.conf import settings as django_settings
from uploads import services
from uploads.models import Upload
from uploads.tus import encode_metadata, parse_metadata

URL = "/api/v1/uploads/"
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"


def events_bytes(n_events: int = 5000, seed: int = 1) -> bytes:
    """A small valid HEXITEC event list (HDF5) as bytes."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["frame_rate_hz"] = 9000.0
        f.attrs["rows"] = 80
        f.attrs["cols"] = 80
        group = f.create_group("events")
        group.create_dataset(
            "frame", data=np.sort(rng.integers(0, 2000, n_events)).astype(np.uint32)
        )
        group.create_dataset("row", data=rng.integers(0, 80, n_events).astype(np.uint8))
        group.create_dataset("col", data=rng.integers(0, 80, n_events).astype(np.uint8))
        group.create_dataset("energy_kev", data=rng.uniform(5, 120, n_events).astype(np.float32))
    return buffer.getvalue()


def create(client, length: int, **metadata) -> tuple:
    response = client.post(
        URL,
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)},
    )
    return response, response.get("Location")


def patch(client, location: str, offset: int, body: bytes, **headers):
    return client.generic(
        "PATCH",
        location,
        data=body,
        content_type=OCTET,
        headers={**TUS, "Upload-Offset": str(offset), **headers},
    )


def upload_all(client, content: bytes, pieces: int = 3, **metadata):
    response, location = create(client, len(content), **metadata)
    assert response.status_code == 201, response.content
    size = -(-len(content) // pieces)
    offset = 0
    for start in range(0, len(content), size):
        response = patch(client, location, offset, content[start : start + size])
        assert response.status_code == 204, response.content
        offset = int(response["Upload-Offset"])
    return response, location


@pytest.fixture
def analyst_client(client_as, analyst):
    return client_as(analyst)


def test_metadata_round_trip_and_bad_base64():
    metadata = {"filename": "scan 1.h5", "project": "3", "region": "2", "flag": ""}
    assert parse_metadata(encode_metadata(metadata)) == metadata
    with pytest.raises(services.TusError) as excinfo:
        parse_metadata("filename !!notbase64")
    assert excinfo.value.status == 400


@pytest.mark.django_db
def test_options_lists_capabilities(client):
    response = client.options(URL)
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert int(response["Tus-Max-Size"]) == django_settings.CORRELI_UPLOAD_MAX_BYTES


def test_upload_in_pieces_creates_ready_dataset_with_sha256(
    analyst_client, project, factories, tmp_path
):
    cell = factories.make_cell(project)
    charge_state = factories.make_charge_state(project, cell=cell)
    content = events_bytes()
    response, location = create(
        analyst_client,
        len(content),
        filename="region1_charged.h5",
        project=str(project.pk),
        dataset_kind="xcs_events",
        charge_state=str(charge_state.pk),
        region="1",
    )
    assert response.status_code == 201
    assert response["Tus-Resumable"] == "1.0.0"
    assert location.startswith("http://testserver/api/v1/uploads/")

    third = len(content) // 3
    response = patch(analyst_client, location, 0, content[:third])
    assert response.status_code == 204 and response["Upload-Offset"] == str(third)
    assert "CorreLi-Dataset-Id" not in response
    head = analyst_client.head(location, headers=TUS)
    assert head.status_code == 200
    assert head["Upload-Offset"] == str(third) and head["Upload-Length"] == str(len(content))
    assert head["Cache-Control"] == "no-store"
    assert parse_metadata(head["Upload-Metadata"])["filename"] == "region1_charged.h5"
    assert Dataset.objects.count() == 0  # nothing half-received is a dataset (or downloadable)

    patch(analyst_client, location, third, content[third : 2 * third])
    response = patch(analyst_client, location, 2 * third, content[2 * third :])
    assert response.status_code == 204
    assert response["Upload-Offset"] == str(len(content))
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert response["CorreLi-Dataset-Status"] == "ready", dataset.status_message
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.size == len(content)
    assert (dataset.status, dataset.kind, dataset.region) == ("ready", "xcs_events", 1)
    assert dataset.charge_state == charge_state and dataset.cell == cell
    assert dataset.metadata["events"] == 5000
    assert dataset.file.name.startswith(f"datasets/{project.pk}/")
    with dataset.file.open("rb") as fh:
        assert fh.read() == content
    upload = Upload.objects.get()
    assert not upload.partial_path.exists()

    state = analyst_client.get(location).json()
    assert state["dataset"] == dataset.pk and state["status"] == "complete"
    assert state["dataset_sha256"] == dataset.sha256
    api = analyst_client.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert (api["sha256"], api["size"], api["status"]) == (dataset.sha256, len(content), "ready")


def test_sha256_correct_when_pieces_arrive_in_another_process(analyst_client, project):
    content = events_bytes(seed=7)
    response, location = create(
        analyst_client, len(content), filename="e.h5", project=str(project.pk)
    )
    half = len(content) // 2
    patch(analyst_client, location, 0, content[:half])
    services._running_hashes.clear()  # as if the next PATCH reached another worker
    response = patch(analyst_client, location, half, content[half:])
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.kind == "xcs_events"  # "other" is replaced by the detected kind


def test_bytes_written_but_not_recorded_are_cut_back(analyst_client, project):
    """A crash between writing and recording leaves a longer file; the offset wins."""
    content = b"a,b\n" + b"1,2\n" * 1000
    response, location = create(
        analyst_client, len(content), filename="t.csv", project=str(project.pk)
    )
    patch(analyst_client, location, 0, content[:100])
    upload = Upload.objects.get()
    with open(upload.partial_path, "ab") as fh:
        fh.write(b"garbage that was never acknowledged")
    services._running_hashes.clear()
    response = patch(analyst_client, location, 100, content[100:])
    assert response.status_code == 204
    dataset = Dataset.objects.get()
    assert dataset.sha256 == hashlib.sha256(content).hexdigest() and dataset.size == len(content)


def test_offset_mismatch_is_409_and_writes_nothing(analyst_client, project):
    response, location = create(analyst_client, 100, filename="x.bin", project=str(project.pk))
    patch(analyst_client, location, 0, b"\x01" * 40)
    response = patch(analyst_client, location, 30, b"\x02" * 10)
    assert response.status_code == 409
    assert "40" in response.json()["detail"]
    assert analyst_client.head(location, headers=TUS)["Upload-Offset"] == "40"
    assert Upload.objects.get().partial_path.read_bytes() == b"\x01" * 40


@pytest.mark.parametrize(
    ("headers", "content_type", "body", "status"),
    [
        ({"Tus-Resumable": "0.2.2", "Upload-Offset": "0"}, OCTET, b"x", 412),
        ({"Upload-Offset": "0"}, OCTET, b"x", 412),
        ({**TUS, "Upload-Offset": "0"}, "application/json", b"{}", 415),
        ({**TUS, "Upload-Offset": "-1"}, OCTET, b"x", 400),
        ({**TUS, "Upload-Offset": "0"}, OCTET, b"x" * 11, 413),
    ],
)
def test_malformed_patch_is_refused(analyst_client, project, headers, content_type, body, status):
    response, location = create(analyst_client, 10, filename="x.bin", project=str(project.pk))
    response = analyst_client.generic(
        "PATCH", location, data=body, content_type=content_type, headers=headers
    )
    assert response.status_code == status
    assert response["Tus-Resumable"] == "1.0.0"
    if status == 412:
        assert response["Tus-Version"] == "1.0.0"
    assert Upload.objects.get().offset == 0


def test_method_override_tunnels_patch(analyst_client, project):
    response, location = create(analyst_client, 4, filename="x.bin", project=str(project.pk))
    response = analyst_client.post(
        location,
        data=b"abcd",
        content_type=OCTET,
        headers={**TUS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert response.status_code == 204 and response["Upload-Offset"] == "4"


def test_termination_deletes_partial_file(analyst_client, project):
    response, location = create(analyst_client, 100, filename="x.bin", project=str(project.pk))
    patch(analyst_client, location, 0, b"z" * 50)
    partial = Upload.objects.get().partial_path
    assert partial.exists()
    response = analyst_client.delete(location, headers=TUS)
    assert response.status_code == 204
    assert not partial.exists() and not Upload.objects.exists()
    assert analyst_client.head(location, headers=TUS).status_code == 404
    assert patch(analyst_client, location, 50, b"z").status_code == 404


def test_terminating_a_finished_upload_keeps_its_dataset(analyst_client, project):
    response, location = upload_all(
        analyst_client, b"a,b\n1,2\n", filename="t.csv", project=str(project.pk)
    )
    assert analyst_client.delete(location, headers=TUS).status_code == 204
    dataset = Dataset.objects.get()
    assert dataset.file.storage.exists(dataset.file.name)


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"project": "{project}"}, "filename"),
        ({"filename": "a.h5"}, "project"),
        ({"filename": "a.h5", "project": "{project}", "dataset_kind": "movie"}, "dataset_kind"),
        ({"filename": "a.h5", "project": "{project}", "region": "zero"}, "region"),
        ({"filename": "a.h5", "project": "{project}", "cell": "{foreign_cell}"}, "no cell"),
    ],
)
def test_bad_metadata_is_400_with_reason(
    analyst_client, project, outsider, factories, metadata, fragment
):
    foreign_cell = factories.make_cell(outsider.memberships.get().project)
    values = {
        k: v.format(project=project.pk, foreign_cell=foreign_cell.pk) for k, v in metadata.items()
    }
    response, _ = create(analyst_client, 10, **values)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    assert not Upload.objects.exists()


def test_too_large_is_413(analyst_client, project, settings):
    settings.CORRELI_UPLOAD_MAX_BYTES = 1000
    response, _ = create(analyst_client, 1001, filename="a.h5", project=str(project.pk))
    assert response.status_code == 413 and response["Tus-Max-Size"] == "1000"


def test_viewer_cannot_upload_and_outsider_gets_404(client_as, project, viewer, outsider):
    response, _ = create(client_as(viewer), 10, filename="a.h5", project=str(project.pk))
    assert response.status_code == 403
    response, _ = create(client_as(outsider), 10, filename="a.h5", project=str(project.pk))
    assert response.status_code == 404
    response, _ = create(client_as(outsider), 10, filename="a.h5", project="999999")
    assert response.status_code == 404
    assert not Upload.objects.exists()


def test_anonymous_is_refused(client, project):
    response, _ = create(client, 10, filename="a.h5", project=str(project.pk))
    assert response.status_code in (401, 403)
    assert not Upload.objects.exists()


def test_uploads_of_other_users_are_404(client_as, analyst, owner, outsider, project):
    response, location = create(client_as(analyst), 10, filename="a.h5", project=str(project.pk))
    for other in (owner, outsider):  # even the project's owner cannot append to it
        other_client = client_as(other)
        assert other_client.head(location, headers=TUS).status_code == 404
        assert other_client.get(location).status_code == 404
        assert patch(other_client, location, 0, b"x").status_code == 404
        assert other_client.delete(location, headers=TUS).status_code == 404
        assert other_client.get(URL).json() == []
    assert Upload.objects.get().offset == 0


def test_token_auth_works(api_client, analyst, project):
    from rest_framework.authtoken.models import Token

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=analyst).key}")
    response, location = upload_all(
        api_client, b"a,b\n1,2\n", filename="t.csv", project=str(project.pk)
    )
    assert response.status_code == 204 and "CorreLi-Dataset-Id" in response


def test_truncated_hdf5_is_rejected_kept_and_explained(analyst_client, project, owner, client_as):
    content = events_bytes()[:3000]
    response, location = upload_all(
        analyst_client,
        content,
        filename="cut.h5",
        project=str(project.pk),
        dataset_kind="xcs_events",
    )
    assert response["CorreLi-Dataset-Status"] == "rejected"
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert dataset.status == "rejected"
    assert "cut.h5" in dataset.status_message and "truncated" in dataset.status_message
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    with dataset.file.open("rb") as fh:
        assert fh.read() == content  # kept, byte for byte
    state = analyst_client.get(location).json()
    assert state["dataset_status"] == "rejected" and "truncated" in state["dataset_status_message"]


def test_declared_kind_that_does_not_match_is_rejected(analyst_client, project):
    response, _ = upload_all(
        analyst_client,
        b"cycle,charge_capacity_mah_g,discharge_capacity_mah_g\n1,200.0,190.0\n",
        filename="cycling.csv",
        project=str(project.pk),
        dataset_kind="xcs_events",
    )
    dataset = Dataset.objects.get()
    assert dataset.status == "rejected"
    assert "uploaded as xcs_events but its content is cycling" in dataset.status_message


def test_empty_file_becomes_rejected_dataset_at_creation(analyst_client, project):
    response, _ = create(analyst_client, 0, filename="empty.h5", project=str(project.pk))
    assert response.status_code == 201
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert dataset.status == "rejected" and "empty" in dataset.status_message


def test_existing_files_are_never_overwritten(analyst_client, project, factories):
    # A name no other test in this process has used, so that the upload collides with ``old``.
    name = f"scan-{uuid.uuid4().hex[:8]}"
    old = factories.make_dataset(project, content=b"precious", name=name)
    assert old.file.name.endswith(f"{name}.bin")
    upload_all(analyst_client, b"new bytes", filename=f"{name}.bin", project=str(project.pk))
    new = Dataset.objects.exclude(pk=old.pk).get()
    assert new.file.name != old.file.name
    with old.file.open("rb") as fh:
        assert fh.read() == b"precious"
    with new.file.open("rb") as fh:
        assert fh.read() == b"new bytes"


def test_finished_upload_is_downloadable_by_members_only(
    analyst_client, client_as, viewer, outsider, project
):
    response, _ = upload_all(
        analyst_client, b"a,b\n1,2\n", filename="t.csv", project=str(project.pk)
    )
    url = f"/catalogue/datasets/{response['CorreLi-Dataset-Id']}/download/"
    download = client_as(viewer).get(url)
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"a,b\n1,2\n"
    assert client_as(outsider).get(url).status_code == 404


def test_upload_page_lists_editable_projects(client_as, analyst, project, viewer, factories):
    cell = factories.make_cell(project)
    page = client_as(analyst).get(f"/uploads/?project={project.pk}&cell={cell.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "tus.min.js" in html and 'id="upload-dropzone"' in html
    for pk in (project.pk, cell.pk):
        assert re.search(rf'<option value="{pk}"[^>]*\bselected\b', html), pk
    page = client_as(viewer).get("/uploads/")
    assert page.status_code == 200 and "cannot upload" in page.content.decode()


def test_drop_zone_on_project_cell_and_dataset_list_pages(
    client_as, analyst, viewer, project, factories
):
    cell = factories.make_cell(project)
    client = client_as(analyst)
    for url in (f"/projects/{project.pk}/", f"/catalogue/cells/{cell.pk}/", "/catalogue/datasets/"):
        html = client.get(url).content.decode()
        assert 'id="upload-dropzone"' in html, url
    html = client.get(f"/catalogue/cells/{cell.pk}/").content.decode()
    assert f'value="{cell.pk}" data-project="{project.pk}" selected' in html
    html = client_as(viewer).get(f"/catalogue/cells/{cell.pk}/").content.decode()
    assert 'id="upload-dropzone"' not in html and "cannot upload" in html


def test_purge_removes_only_stale_unfinished_uploads(analyst_client, project):
    from datetime import timedelta

    from django.utils import timezone

    create(analyst_client, 10, filename="old.bin", project=str(project.pk))
    create(analyst_client, 10, filename="new.bin", project=str(project.pk))
    upload_all(analyst_client, b"a,b\n1,2\n", filename="done.csv", project=str(project.pk))
    old = Upload.objects.get(filename="old.bin")
    Upload.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=8))
    Upload.objects.filter(filename="done.csv").update(updated_at=timezone.now() - timedelta(days=8))
    assert services.purge_stale_uploads(older_than=timedelta(days=7)) == 1
    assert not old.partial_path.exists()
    assert set(Upload.objects.values_list("filename", flat=True)) == {"new.bin", "done.csv"}


# --- the body reader under gunicorn: recv_into on the socket, gunicorn's reader kept in step --


def gunicorn_input(body_head: bytes, length: int):
    """A gunicorn request body of ``length`` bytes over one end of a socketpair.

    ``body_head`` is what gunicorn read ahead together with the headers; the rest is sent by
    the caller through the returned peer socket.
    """
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    server, peer = socket.socketpair()
    unreader = SocketUnreader(server)
    unreader.unread(body_head)
    return Body(LengthReader(unreader, length)), server, peer, unreader


def gunicorn_patch(client, location, offset, body, sent_by_peer: bytes, length: int, head: int):
    stream, server, peer, unreader = gunicorn_input(body[:head], length)
    peer.sendall(sent_by_peer)
    peer.shutdown(socket.SHUT_WR)
    try:
        response = client.generic(
            "PATCH",
            location,
            content_type=OCTET,
            headers={**TUS, "Upload-Offset": str(offset)},
            **{
                "wsgi.input": stream,
                "gunicorn.socket": server,
                "CONTENT_LENGTH": str(length),
                "CONTENT_TYPE": OCTET,
            },
        )
        return response, stream, unreader
    finally:
        server.close()
        peer.close()


def test_patch_read_from_gunicorn_socket_keeps_next_request_intact(analyst_client, project):
    content = events_bytes(seed=11)
    response, location = create(
        analyst_client, len(content), filename="g.h5", project=str(project.pk)
    )
    stream, server, peer, unreader = gunicorn_input(content[:1000], len(content))
    # The rest of the body, then a pipelined next request that must stay unread.
    peer.sendall(content[1000:] + b"GET /next HTTP/1.1\r\n\r\n")
    try:
        response = analyst_client.generic(
            "PATCH",
            location,
            content_type=OCTET,
            headers={**TUS, "Upload-Offset": "0"},
            **{
                "wsgi.input": stream,
                "gunicorn.socket": server,
                "CONTENT_LENGTH": str(len(content)),
                "CONTENT_TYPE": OCTET,
            },
        )
        assert response.status_code == 204, response.content
        assert response["Upload-Offset"] == str(len(content))
        assert stream.reader.length == 0  # gunicorn sees the body as consumed
        assert unreader.read() == b"GET /next HTTP/1.1\r\n\r\n"
    finally:
        server.close()
        peer.close()
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.status == "ready" and dataset.kind == "xcs_events"


def test_gunicorn_read_ahead_longer_than_body_is_handed_back():
    from django.core.handlers.wsgi import WSGIRequest
    from uploads.body import request_body

    body = b"0123456789"
    stream, server, peer, unreader = gunicorn_input(body + b"NEXT", len(body))
    peer.shutdown(socket.SHUT_WR)  # nothing more arrives: a lost "NEXT" fails, not hangs
    try:
        environ = {
            "REQUEST_METHOD": "PATCH",
            "wsgi.input": stream,
            "gunicorn.socket": server,
            "CONTENT_LENGTH": str(len(body)),
        }
        reader = request_body(WSGIRequest(environ), len(body))
        assert type(reader).__name__ == "_GunicornSocketBody"  # the recv_into fast path
        buffer = memoryview(bytearray(4))
        received = b""
        while n := reader.readinto(buffer):
            received += bytes(buffer[:n])
        assert received == body and stream.reader.length == 0
        assert unreader.read() == b"NEXT"
    finally:
        server.close()
        peer.close()


def test_client_gone_mid_body_over_socket_keeps_what_arrived(analyst_client, project):
    """The peer closes after 3000 of 8000 bytes: 3000 are recorded and the upload resumes."""
    content = bytes(range(256)) * 40  # 10240 bytes
    response, location = create(
        analyst_client, len(content), filename="c.bin", project=str(project.pk)
    )
    response, stream, _ = gunicorn_patch(
        analyst_client, location, 0, content, content[500:3000], length=8000, head=500
    )
    assert response.status_code == 204 and response["Upload-Offset"] == "3000"
    upload = Upload.objects.get()
    assert upload.offset == 3000 and upload.partial_path.read_bytes() == content[:3000]
    response = patch(analyst_client, location, 3000, content[3000:])
    assert response.status_code == 204
    dataset = Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))
    assert dataset.sha256 == hashlib.sha256(content).hexdigest() and dataset.size == len(content)


def test_refused_patch_leaves_gunicorn_body_unread(analyst_client, project):
    """A 409 before reading must leave the read-ahead with gunicorn, so on a keep-alive
    connection it drains exactly this body and parses the next request where it starts."""
    body = b"x" * 5000
    response, location = create(analyst_client, 10000, filename="k.bin", project=str(project.pk))
    stream, server, peer, unreader = gunicorn_input(body[:700], len(body))
    peer.sendall(body[700:] + b"NEXT")
    peer.shutdown(socket.SHUT_WR)
    try:
        response = analyst_client.generic(
            "PATCH",
            location,
            content_type=OCTET,
            headers={**TUS, "Upload-Offset": "123"},  # the server is at 0
            **{
                "wsgi.input": stream,
                "gunicorn.socket": server,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": OCTET,
            },
        )
        assert response.status_code == 409
        assert stream.read() == body  # what gunicorn's keep-alive drain reads
        assert unreader.read() == b"NEXT"
    finally:
        server.close()
        peer.close()
    assert Upload.objects.get().offset == 0


# --- space: disk margin and per-project quota (issue 18), and the periodic purge -------------


def test_upload_longer_than_free_disk_minus_margin_is_507(analyst_client, project, settings):
    import shutil

    free = shutil.disk_usage(settings.MEDIA_ROOT).free
    settings.CORRELI_UPLOAD_MAX_BYTES = 2**62
    settings.CORRELI_UPLOAD_DISK_MARGIN_BYTES = 1024**3
    # the declared 64 GiB of the outside test, or whatever exceeds this disk
    too_big = max(64 * 1024**3, free)
    response, _ = create(analyst_client, too_big, filename="huge.h5", project=str(project.pk))
    assert response.status_code == 507
    assert "disk space" in response.json()["detail"]
    # fits the disk but not the margin (256 MiB of slack for other processes freeing space)
    settings.CORRELI_UPLOAD_DISK_MARGIN_BYTES = free
    response, _ = create(analyst_client, 256 * 1024**2, filename="one.h5", project=str(project.pk))
    assert response.status_code == 507
    assert not Upload.objects.exists()
    settings.CORRELI_UPLOAD_DISK_MARGIN_BYTES = 0
    assert (
        create(analyst_client, 1, filename="one.h5", project=str(project.pk))[0].status_code == 201
    )


def test_project_quota_counts_datasets_and_unfinished_uploads(
    analyst_client, project, factories, settings
):
    settings.CORRELI_PROJECT_QUOTA_BYTES = 1000
    factories.make_dataset(project, content=b"x" * 600)
    assert (
        create(analyst_client, 300, filename="a.h5", project=str(project.pk))[0].status_code == 201
    )
    # 600 stored + 300 reserved + 101 > 1000
    response, _ = create(analyst_client, 101, filename="b.h5", project=str(project.pk))
    assert response.status_code == 507
    detail = response.json()["detail"]
    assert "quota of 1000 bytes" in detail and "600" in detail and "300" in detail
    assert (
        create(analyst_client, 100, filename="c.h5", project=str(project.pk))[0].status_code == 201
    )
    # another project is not charged for this one's bytes
    other = factories.make_project(name="other")
    factories.add_member(other, Upload.objects.first().created_by, "analyst")
    assert create(analyst_client, 900, filename="d.h5", project=str(other.pk))[0].status_code == 201


def test_periodic_task_purges_stale_partial_uploads(analyst_client, project, settings):
    from datetime import timedelta

    from django.utils import timezone
    from uploads.tasks import purge_stale_uploads

    settings.CORRELI_UPLOAD_STALE_HOURS = 2
    create(analyst_client, 10, filename="stale.bin", project=str(project.pk))
    create(analyst_client, 10, filename="recent.bin", project=str(project.pk))
    stale = Upload.objects.get(filename="stale.bin")
    Upload.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=3))
    assert purge_stale_uploads.delay().get() == 1
    assert not stale.partial_path.exists()
    assert list(Upload.objects.values_list("filename", flat=True)) == ["recent.bin"]
    schedule = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["uploads.tasks.purge_stale_uploads"]["schedule"] <= timedelta(hours=1)
