"""Cross-project access answers 404 in pages, API and downloads; viewers cannot write."""

import pytest
from django.urls import reverse
from projects.models import Project
from projects.permissions import can_edit, get_for_user_or_404, projects_for, role_in

from tests.web import factories as f

pytestmark = pytest.mark.django_db


def test_helpers(project, owner, analyst, viewer, outsider):
    assert list(projects_for(viewer)) == [project]
    assert project not in projects_for(outsider)
    assert (role_in(owner, project), role_in(analyst, project), role_in(viewer, project)) == (
        "owner",
        "analyst",
        "viewer",
    )
    assert role_in(outsider, project) is None
    assert can_edit(analyst, project) and not can_edit(viewer, project)
    from django.http import Http404

    with pytest.raises(Http404):
        get_for_user_or_404(Project.objects.all(), outsider, pk=project.pk)
    assert get_for_user_or_404(Project.objects.all(), viewer, pk=project.pk) == project


PAGE_NAMES = ["sample_detail", "sample_edit", "sample_delete"]


def test_pages_of_foreign_objects_answer_404(client_as, project, outsider):
    sample = f.make_sample(project)
    dataset = f.make_dataset(project, content=b"secret bytes")
    client = client_as(outsider)
    urls = [reverse(f"catalogue:{name}", args=[sample.pk]) for name in PAGE_NAMES]
    urls += [
        reverse("projects:project_detail", args=[project.pk]),
        reverse("projects:project_edit", args=[project.pk]),
        reverse("projects:members", args=[project.pk]),
        reverse("projects:audit", args=[project.pk]),
        reverse("catalogue:dataset_detail", args=[dataset.pk]),
        reverse("catalogue:dataset_download", args=[dataset.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("catalogue:sample_delete", args=[sample.pk])).status_code == 404
    assert sample.name not in client.get(reverse("catalogue:sample_list")).content.decode()


def test_api_foreign_objects_answer_404(api_as, project, outsider):
    sample = f.make_sample(project)
    dataset = f.make_dataset(project, content=b"secret bytes")
    api = api_as(outsider)
    assert api.get(f"/api/v1/samples/{sample.pk}/").status_code == 404
    assert api.patch(f"/api/v1/samples/{sample.pk}/", {"name": "x"}).status_code == 404
    assert api.delete(f"/api/v1/samples/{sample.pk}/").status_code == 404
    assert api.get(f"/api/v1/projects/{project.pk}/").status_code == 404
    assert api.get(f"/api/v1/datasets/{dataset.pk}/download/").status_code == 404
    assert api.get("/api/v1/samples/").json()["count"] == 0
    # A foreign id in a link is indistinguishable from an unknown one.
    own_project = projects_for(outsider).get()
    response = api.post(
        "/api/v1/cells/", {"project": own_project.pk, "name": "c", "cathode": sample.pk}
    )
    assert response.status_code == 400 and "cathode" in response.json()


def test_downloads_serve_members_the_exact_bytes(client_as, api_as, project, viewer):
    dataset = f.make_dataset(project, content=b"\x89HDF fake payload")
    response = client_as(viewer).get(reverse("catalogue:dataset_download", args=[dataset.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89HDF fake payload"
    response = api_as(viewer).get(f"/api/v1/datasets/{dataset.pk}/download/")
    assert b"".join(response.streaming_content) == b"\x89HDF fake payload"


def test_anonymous_users_are_sent_to_login_and_refused_by_the_api(client, api_client, project):
    dataset = f.make_dataset(project, content=b"x")
    response = client.get(reverse("catalogue:dataset_download", args=[dataset.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert api_client.get("/api/v1/datasets/").status_code in (401, 403)


def test_viewer_cannot_write_anything(client_as, api_as, project, viewer):
    sample = f.make_sample(project)
    api = api_as(viewer)
    assert api.get(f"/api/v1/samples/{sample.pk}/").status_code == 200
    assert api.patch(f"/api/v1/samples/{sample.pk}/", {"name": "x"}).status_code == 403
    assert api.delete(f"/api/v1/samples/{sample.pk}/").status_code == 403
    response = api.post("/api/v1/samples/", {"project": project.pk, "name": "n", "material": "m"})
    assert response.status_code == 403
    assert api.patch(f"/api/v1/projects/{project.pk}/", {"name": "x"}).status_code == 403
    client = client_as(viewer)
    assert client.get(reverse("catalogue:sample_edit", args=[sample.pk])).status_code == 403
    response = client.post(reverse("catalogue:sample_delete", args=[sample.pk]))
    assert response.status_code == 403
    response = client.post(
        reverse("projects:members", args=[project.pk]), {"username": "viewer", "role": "owner"}
    )
    assert response.status_code == 403
    sample.refresh_from_db()
    assert sample.name != "x"


def test_analyst_edits_but_only_owner_manages_members(api_as, project, analyst, viewer):
    api = api_as(analyst)
    sample = f.make_sample(project)
    assert api.patch(f"/api/v1/samples/{sample.pk}/", {"thickness_um": 450}).status_code == 200
    membership = project.memberships.get(user=viewer)
    response = api.patch(f"/api/v1/memberships/{membership.pk}/", {"role": "owner"})
    assert response.status_code == 403
