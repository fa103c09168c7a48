"""REST API: CRUD per collection, filters, pagination, token auth, error answers."""

import hashlib

import pytest
from catalogue.models import Dataset, Sample
from django.core.files.uploadedfile import SimpleUploadedFile
from projects.models import AuditEvent

from tests.web import factories as f

pytestmark = pytest.mark.django_db


def test_token_endpoint_returns_a_working_token(api_client, owner):
    response = api_client.post("/api/v1/auth/token/", {"username": "owner", "password": f.PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    assert len(token) == 40
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/projects/").status_code == 200
    bad = api_client.post("/api/v1/auth/token/", {"username": "owner", "password": "nope"})
    assert bad.status_code == 400


def test_token_requests_are_attributed_in_the_audit_trail(api_client, project, owner):
    token = api_client.post(
        "/api/v1/auth/token/", {"username": "owner", "password": f.PASSWORD}
    ).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api_client.post(
        "/api/v1/samples/", {"project": project.pk, "name": "S1", "material": "NMC811"}
    )
    assert response.status_code == 201
    event = AuditEvent.objects.get(object_type="catalogue.sample", action="create")
    assert event.user == owner


def test_project_create_makes_the_creator_owner(api_as, owner):
    response = api_as(owner).post("/api/v1/projects/", {"name": "New", "description": "d"})
    assert response.status_code == 201
    assert response.json()["role"] == "owner"
    assert response.json()["slug"] == "new"


def test_sample_cell_charge_state_beamtime_crud(api_as, project, analyst):
    api = api_as(analyst)
    sample = api.post(
        "/api/v1/samples/",
        {
            "project": project.pk,
            "name": "DIT-600",
            "material": "NMC811",
            "fabrication_method": "dit",
            "thickness_um": 600,
            "nominal_porosity": 0.35,
        },
        format="json",
    )
    assert sample.status_code == 201, sample.json()
    sample_id = sample.json()["id"]
    cell = api.post(
        "/api/v1/cells/",
        {"project": project.pk, "name": "C1", "cathode": sample_id, "assembly_date": "2022-03-01"},
        format="json",
    )
    assert cell.status_code == 201, cell.json()
    state = api.post(
        "/api/v1/charge-states/",
        {
            "project": project.pk,
            "cell": cell.json()["id"],
            "state": "discharged",
            "cycle_number": 1,
            "voltage_min_v": 3.0,
            "voltage_max_v": 4.3,
        },
        format="json",
    )
    assert state.status_code == 201, state.json()
    beamtime = api.post(
        "/api/v1/beamtimes/",
        {"project": project.pk, "facility": "Diamond", "beamline": "I12", "beam_energy_kev": 115},
        format="json",
    )
    assert beamtime.status_code == 201
    detail = api.get(f"/api/v1/samples/{sample_id}/").json()
    assert detail["thickness_um"] == 600 and detail["fabrication_method"] == "dit"
    response = api.patch(f"/api/v1/samples/{sample_id}/", {"thickness_um": 450}, format="json")
    assert response.json()["thickness_um"] == 450
    # Refused deletes say why (409), the sample is still there.
    response = api.delete(f"/api/v1/samples/{sample_id}/")
    assert response.status_code == 409
    assert "cells" in response.json()["detail"]
    assert Sample.objects.filter(pk=sample_id).exists()
    assert api.delete(f"/api/v1/charge-states/{state.json()['id']}/").status_code == 204
    assert api.delete(f"/api/v1/cells/{cell.json()['id']}/").status_code == 204
    assert api.delete(f"/api/v1/samples/{sample_id}/").status_code == 204


def test_invalid_values_answer_400_with_field_errors(api_as, project, analyst):
    api = api_as(analyst)
    response = api.post(
        "/api/v1/samples/",
        {"project": project.pk, "name": "", "material": "NMC811", "nominal_porosity": 1.5},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"name", "nominal_porosity"}
    response = api.post(
        "/api/v1/beamtimes/",
        {
            "project": project.pk,
            "facility": "Diamond",
            "beamline": "I12",
            "start_date": "2022-03-05",
            "end_date": "2022-03-01",
        },
        format="json",
    )
    assert response.status_code == 400 and "end_date" in response.json()
    assert api.get("/api/v1/samples/999999/").status_code == 404


def test_filters_by_material_method_state_beamtime_kind(api_as, project, viewer):
    dit = f.make_sample(project, material="NMC811", fabrication_method="dit")
    slurry = f.make_sample(project, material="NMC622", fabrication_method="slurry")
    charged = f.make_charge_state(project, f.make_cell(project, dit), state="charged")
    discharged = f.make_charge_state(project, f.make_cell(project, slurry), state="discharged")
    i12 = f.make_beamtime(project, beamline="I12")
    other_bt = f.make_beamtime(project, beamline="ID15A", facility="ESRF")
    d1 = f.make_dataset(project, kind="xcs_events", charge_state=charged, beamtime=i12, region=1)
    d2 = f.make_dataset(project, kind="xct_projections", charge_state=discharged, beamtime=other_bt)
    api = api_as(viewer)

    def ids(url):
        response = api.get(url)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("/api/v1/samples/?material=nmc811") == {dit.pk}
    assert ids("/api/v1/samples/?fabrication_method=slurry") == {slurry.pk}
    assert ids("/api/v1/charge-states/?state=charged") == {charged.pk}
    assert ids(f"/api/v1/datasets/?beamtime={i12.pk}") == {d1.pk}
    assert ids("/api/v1/datasets/?kind=xct_projections") == {d2.pk}
    assert ids("/api/v1/datasets/?state=discharged") == {d2.pk}
    assert ids("/api/v1/datasets/?material=NMC811&fabrication_method=dit") == {d1.pk}
    assert ids("/api/v1/datasets/?region=1") == {d1.pk}
    assert ids("/api/v1/beamtimes/?facility=esrf") == {other_bt.pk}
    assert ids("/api/v1/samples/?q=622") == {slurry.pk}
    assert api.get("/api/v1/datasets/?kind=nonsense").status_code == 400


def test_pagination(api_as, project, viewer):
    for _ in range(7):
        f.make_sample(project)
    page = api_as(viewer).get("/api/v1/samples/?page_size=5").json()
    assert page["count"] == 7 and len(page["results"]) == 5 and page["next"]
    page2 = api_as(viewer).get(page["next"]).json()
    assert len(page2["results"]) == 2 and page2["next"] is None


def test_small_dataset_upload_is_hashed_and_checked(api_as, project, analyst):
    content = b"not a data format at all \x00\x01\x02" * 10
    upload = SimpleUploadedFile("scan_0001.h5", content)
    response = api_as(analyst).post(
        "/api/v1/datasets/",
        {"project": project.pk, "name": "mystery", "kind": "other", "file": upload, "region": 2},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["size"] == len(content)
    assert body["status"] == "rejected"
    assert "HDF5 signature" in body["status_message"]
    assert body["download_url"].endswith(f"/api/v1/datasets/{body['id']}/download/")
    dataset = Dataset.objects.get(pk=body["id"])
    assert dataset.file.name.startswith(f"datasets/{project.pk}/")


def test_unknown_binary_upload_is_kept_as_other(api_as, project, analyst):
    upload = SimpleUploadedFile("notes.bin", b"\x00\x01binary")
    response = api_as(analyst).post(
        "/api/v1/datasets/", {"project": project.pk, "file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "ready" and response.json()["kind"] == "other"
    assert response.json()["name"] == "notes.bin"


def test_dataset_links_must_stay_in_the_project(api_as, project, analyst, factories):
    other = factories.make_project(analyst)
    foreign_cell = f.make_cell(other)
    response = api_as(analyst).post(
        "/api/v1/datasets/",
        {"project": project.pk, "name": "d", "kind": "eis", "cell": foreign_cell.pk},
        format="json",
    )
    assert response.status_code == 400 and "cell" in response.json()


def test_owner_manages_members_but_keeps_one_owner(api_as, project, owner, factories):
    newcomer = factories.make_user("newcomer")
    api = api_as(owner)
    response = api.post(
        "/api/v1/memberships/", {"project": project.pk, "user": "newcomer", "role": "analyst"}
    )
    assert response.status_code == 201
    assert api.get(f"/api/v1/projects/{project.pk}/").status_code == 200
    mine = project.memberships.get(user=owner)
    response = api.patch(f"/api/v1/memberships/{mine.pk}/", {"role": "viewer"})
    assert response.status_code == 400 and "owner" in str(response.json())
    assert api.delete(f"/api/v1/memberships/{mine.pk}/").status_code == 400
    duplicate = api.post(
        "/api/v1/memberships/", {"project": project.pk, "user": "newcomer", "role": "viewer"}
    )
    assert duplicate.status_code == 400
    assert newcomer.memberships.get().role == "analyst"


def test_audit_events_api_is_scoped(api_as, project, viewer, outsider):
    f.make_sample(project)
    assert api_as(viewer).get("/api/v1/audit-events/").json()["count"] >= 1
    seen = api_as(outsider).get("/api/v1/audit-events/").json()["results"]
    assert all(row["project"] != project.pk for row in seen)
