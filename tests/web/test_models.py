import pytest
from catalogue.models import Cell, Dataset, Sample
from django.core.exceptions import ValidationError
from django.db.models import RestrictedError
from projects import audit
from projects.models import AuditEvent, Project

from tests.web import factories as f

pytestmark = pytest.mark.django_db


def test_project_slugs_are_unique_and_derived_from_the_name():
    a = f.make_project(name="Li NMC811 depth")
    b = f.make_project(name="Li NMC811 depth")
    assert a.slug == "li-nmc811-depth"
    assert b.slug == "li-nmc811-depth-2"


def test_deleting_a_sample_used_by_a_cell_is_refused_but_the_project_cascades():
    project = f.make_project()
    cell = f.make_cell(project)
    f.make_dataset(project, cell=cell)
    with pytest.raises(RestrictedError):
        cell.cathode.delete()
    with pytest.raises(RestrictedError):
        cell.delete()
    project.delete()
    assert Sample.objects.count() == Cell.objects.count() == Dataset.objects.count() == 0


def test_links_across_projects_are_invalid():
    mine, other = f.make_project(), f.make_project()
    foreign_cell = f.make_cell(other)
    dataset = Dataset(project=mine, name="x", kind="other", cell=foreign_cell)
    with pytest.raises(ValidationError) as err:
        dataset.full_clean()
    assert "cell" in err.value.message_dict


def test_charge_state_of_another_cell_and_inverted_voltage_window_are_invalid():
    project = f.make_project()
    state = f.make_charge_state(project)
    other_cell = f.make_cell(project)
    dataset = Dataset(project=project, name="x", cell=other_cell, charge_state=state)
    with pytest.raises(ValidationError) as err:
        dataset.full_clean()
    assert "charge_state" in err.value.message_dict
    state.voltage_min_v, state.voltage_max_v = 4.3, 3.0
    with pytest.raises(ValidationError):
        state.full_clean()


def test_a_charge_state_implies_its_cell_on_a_dataset():
    project = f.make_project()
    state = f.make_charge_state(project)
    dataset = f.make_dataset(project, charge_state=state)
    assert dataset.cell_id == state.cell_id


def test_nominal_porosity_outside_0_1_is_invalid():
    sample = f.make_sample(f.make_project())
    sample.nominal_porosity = 1.4
    with pytest.raises(ValidationError) as err:
        sample.full_clean()
    assert "nominal_porosity" in err.value.message_dict


def test_audit_trail_records_who_what_and_when():
    user = f.make_user("auditor")
    project = f.make_project(user)
    with audit.acting_user(user):
        sample = f.make_sample(project, thickness_um=600.0)
        sample.thickness_um = 450.0
        sample.save()
        sample_id = sample.pk
        sample.delete()
    events = AuditEvent.objects.filter(object_type="catalogue.sample", object_id=str(sample_id))
    actions = list(events.order_by("pk").values_list("action", flat=True))
    assert actions == ["create", "update", "delete"]
    update = events.get(action="update")
    assert update.changes == {"thickness_um": [600.0, 450.0]}
    assert update.user == user and update.username == "auditor"
    assert update.project_id == project.pk and update.created_at is not None


def test_audit_trail_outlives_a_deleted_project():
    project = f.make_project(f.make_user())
    f.make_sample(project)
    project_id = project.pk
    project.delete()
    assert not Project.objects.filter(pk=project_id).exists()
    kinds = set(AuditEvent.objects.filter(project_id=project_id).values_list("action", flat=True))
    assert kinds == {"create", "delete"}
