"""Server-rendered pages: login, dashboard, catalogue forms and filters, members, audit."""

import pytest
from catalogue.models import Sample
from django.urls import reverse
from projects.models import AuditEvent

from tests.web import factories as f

pytestmark = pytest.mark.django_db


def test_login_page_and_redirect(client, owner):
    assert client.get(reverse("projects:project_list")).status_code == 302
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"Log in" in page.content
    response = client.post(reverse("login"), {"username": "owner", "password": f.PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("projects:project_list")).status_code == 200


def test_dashboard_shows_only_my_projects(client_as, project, outsider, owner):
    page = client_as(owner).get(reverse("projects:project_list")).content.decode()
    assert "DIT vs slurry" in page and "Someone else" not in page
    assert "/static/css/correli.css" in page and "cdn" not in page.lower()


def test_create_sample_through_the_form_and_filter_the_list(client_as, project, analyst):
    client = client_as(analyst)
    url = reverse("catalogue:sample_add")
    bad = client.post(url, {"project": project.pk, "name": "", "material": "NMC811"})
    assert bad.status_code == 200 and b"This field is required" in bad.content
    response = client.post(
        url,
        {
            "project": project.pk,
            "name": "DIT-600",
            "material": "NMC811",
            "fabrication_method": "dit",
            "thickness_um": "600",
        },
    )
    sample = Sample.objects.get(name="DIT-600")
    assert response.status_code == 302 and response["Location"] == sample.get_absolute_url()
    f.make_sample(project, name="Slurry-100", material="NMC622", fabrication_method="slurry")
    listing = client.get(reverse("catalogue:sample_list") + "?fabrication_method=dit").content
    assert b"DIT-600" in listing and b"Slurry-100" not in listing
    detail = client.get(sample.get_absolute_url()).content.decode()
    assert "Directional ice templating" in detail and "600.0" in detail
    assert AuditEvent.objects.filter(object_type="catalogue.sample", user=analyst).exists()


def test_viewer_cannot_create_in_a_project_they_only_view(client_as, project, viewer):
    response = client_as(viewer).post(
        reverse("catalogue:sample_add"), {"project": project.pk, "name": "x", "material": "m"}
    )
    # The project is not among the choices: a form error, nothing created.
    assert response.status_code == 200 and not Sample.objects.filter(name="x").exists()


def test_delete_of_a_sample_in_use_is_refused_with_a_reason(client_as, project, owner):
    cell = f.make_cell(project)
    client = client_as(owner)
    url = reverse("catalogue:sample_delete", args=[cell.cathode.pk])
    assert b"still referenced by 1 cells" in client.get(url).content
    response = client.post(url, follow=True)
    assert b"Cannot delete" in response.content
    assert Sample.objects.filter(pk=cell.cathode.pk).exists()


def test_every_catalogue_page_renders(client_as, project, owner):
    state = f.make_charge_state(project)
    beamtime = f.make_beamtime(project)
    dataset = f.make_dataset(project, charge_state=state, beamtime=beamtime, content=b"abc")
    client = client_as(owner)
    objects = {
        "sample": state.cell.cathode,
        "cell": state.cell,
        "chargestate": state,
        "beamtime": beamtime,
        "dataset": dataset,
    }
    for name, obj in objects.items():
        for view in ("list", "detail", "edit", "delete"):
            args = [] if view == "list" else [obj.pk]
            response = client.get(reverse(f"catalogue:{name}_{view}", args=args))
            assert response.status_code == 200, (name, view)
    for name in ("project_detail", "members", "audit", "project_edit"):
        assert client.get(reverse(f"projects:{name}", args=[project.pk])).status_code == 200


def test_owner_adds_and_changes_members(client_as, project, owner, factories):
    factories.make_user("newcomer")
    client = client_as(owner)
    url = reverse("projects:members", args=[project.pk])
    response = client.post(url, {"username": "newcomer", "role": "analyst"})
    assert response.status_code == 302
    membership = project.memberships.get(user__username="newcomer")
    assert membership.role == "analyst"
    change = reverse("projects:member_change", args=[project.pk, membership.pk])
    client.post(change, {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == "viewer"
    mine = project.memberships.get(user=owner)
    client.post(reverse("projects:member_change", args=[project.pk, mine.pk]), {"remove": "1"})
    assert project.memberships.filter(user=owner).exists()  # the last owner stays
    assert client.post(url, {"username": "nobody", "role": "viewer"}).status_code == 200
