import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for collection in ("projects", "samples", "cells", "charge-states", "beamtimes", "datasets"):
        assert f"/api/v1/{collection}/" in text
    assert "/api/v1/auth/token/" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served_without_cdn(client, owner):
    client.force_login(owner)
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()
