"""Issue 18, defects 3, 4 and 8: inputs that used to answer 500, and responses the schema did
not describe. Each case is a request the outside test sent by hand."""

from __future__ import annotations

import base64

import pytest
import yaml
from django.core.management import call_command
from uploads.models import Upload
from uploads.tus import encode_metadata

pytestmark = pytest.mark.django_db
TUS = {"Tus-Resumable": "1.0.0"}


def tus_create(client, length: str, metadata_header: str):
    return client.post(
        "/api/v1/uploads/",
        headers={**TUS, "Upload-Length": length, "Upload-Metadata": metadata_header},
    )


# --- defect 3: format-suffix routes ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/datasets/{id}/download.json",
        "/api/v1/jobs/kinds.json",
        "/api/v1/datasets/{id}.json",
        "/api/v1/projects.json",
        "/api/v1/results/1/figure.json",
        "/api/v1/review-links.json",
    ],
)
def test_format_suffix_routes_are_404_not_500(api_as, analyst, project, factories, path):
    dataset = factories.make_dataset(project, content=b"abc")
    response = api_as(analyst).get(path.format(id=dataset.pk))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    # the routes without the suffix still work
    assert api_as(analyst).get(f"/api/v1/datasets/{dataset.pk}/download/").status_code == 200


def test_unknown_api_path_answers_json_404(api_as, analyst):
    response = api_as(analyst).get("/api/v1/uploads/not-a-uuid/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- defect 4: tus creation ------------------------------------------------------------------


@pytest.mark.parametrize("length", ["²", "١٢", "+5", "-1", " 5", "99999999999999999999999"])
def test_upload_length_that_is_not_ascii_digits_is_400(client_as, analyst, project, length):
    metadata = encode_metadata({"filename": "a.h5", "project": str(project.pk)})
    response = tus_create(client_as(analyst), length, metadata)
    assert response.status_code == 400, response.content
    assert "Upload-Length" in response.json()["detail"]
    assert not Upload.objects.exists()


@pytest.mark.parametrize("key", ["project", "cell", "charge_state", "beamtime", "region"])
@pytest.mark.parametrize("value", ["²", "٣", "9" * 30])
def test_metadata_ids_that_are_not_ascii_integers_are_400(client_as, analyst, project, key, value):
    metadata = {"filename": "a.h5", "project": str(project.pk), key: value}
    response = tus_create(client_as(analyst), "10", encode_metadata(metadata))
    assert response.status_code == 400, response.content
    assert key in response.json()["detail"]


@pytest.mark.parametrize("field", ["filename", "dataset_kind", "note", "project"])
def test_nul_bytes_in_metadata_are_400(client_as, analyst, project, field):
    metadata = {"filename": "a.h5", "project": str(project.pk)}
    metadata[field] = metadata.get(field, "x") + "\x00evil"
    response = tus_create(client_as(analyst), "10", encode_metadata(metadata))
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert not Upload.objects.exists()


def test_nul_byte_in_metadata_key_is_400(client_as, analyst, project):
    header = encode_metadata({"filename": "a.h5", "project": str(project.pk)})
    header += ",ke\x00y " + base64.b64encode(b"v").decode()
    # a NUL cannot travel in a real HTTP header; the WSGI layer may still hand one over
    response = tus_create(client_as(analyst), "10", header)
    assert response.status_code == 400


def test_nul_in_json_body_is_400_not_a_database_error(api_as, analyst, project):
    response = api_as(analyst).post(
        "/api/v1/datasets/",
        {"project": project.pk, "name": "ok", "metadata": {"note": "a\u0000b"}},
        format="json",
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


# --- defect 8: authentication challenge and schema -------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [("get", "/api/v1/projects/"), ("get", "/api/v1/jobs/kinds/"), ("post", "/api/v1/uploads/")],
)
def test_unauthenticated_api_request_is_401_with_challenge(api_client, method, path):
    response = getattr(api_client, method)(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_session_authenticated_requests_still_work(client_as, analyst):
    assert client_as(analyst).get("/api/v1/projects/").status_code == 200


@pytest.fixture(scope="module")
def schema(django_db_blocker, tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def test_upload_dataset_fields_are_nullable_in_schema(schema):
    properties = schema["components"]["schemas"]["UploadState"]["properties"]
    for name in ("dataset_sha256", "dataset_status", "dataset_status_message"):
        assert properties[name].get("nullable") is True, name


def test_every_operation_documents_the_shared_error_codes(schema):
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete", "head", "options"}
    ]
    assert len(operations) > 40
    for path, method, operation in operations:
        for code in ("400", "401", "403", "404", "409", "413", "429", "507"):
            assert code in operation["responses"], (path, method, code)
    create = schema["paths"]["/api/v1/uploads/"]["post"]["responses"]
    for code in ("410", "411", "412", "415", "423"):
        assert code in create
    assert "Retry-After" in create["429"]["headers"]
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["detail"]["type"] == "string"


def test_schema_has_no_format_suffix_paths(schema):
    assert not [path for path in schema["paths"] if "{format}" in path or path.endswith(".json")]


def test_nul_in_multipart_field_is_400(api_as, analyst, project):
    response = api_as(analyst).post(
        "/api/v1/datasets/",
        {"project": project.pk, "name": "o\x00k", "metadata": '{"a": "b\\u0000"}'},
        format="multipart",
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/jobs/?project=9999999999999999999999",
        "/api/v1/jobs/?cell=-4.5e87",
        "/api/v1/results/?job=99999999999999999999",
        "/api/v1/audit-events/?project=-4.554554878181462e%2B87",
        "/api/v1/datasets/?region=99999999999999999999",
        "/api/v1/memberships/?project=1e30",
        "/api/v1/review-links/?result=99999999999999999999",
    ],
)
def test_out_of_range_numbers_in_filters_are_not_500(api_as, owner, project, query):
    response = api_as(owner).get(query)
    assert response.status_code in (200, 400), response.content
