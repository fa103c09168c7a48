"""Plain factory functions for web and integration tests (no fixture files)."""

from __future__ import annotations

import itertools

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from projects.models import Membership, Project, Role

_counter = itertools.count(1)
PASSWORD = "correli-test-pw"


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_project(owner=None, name: str | None = None, **extra) -> Project:
    project = Project.objects.create(name=name or f"Project {next(_counter)}", **extra)
    if owner is not None:
        Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def add_member(project: Project, user, role: str = Role.VIEWER) -> Membership:
    return Membership.objects.create(project=project, user=user, role=role)


def make_sample(project: Project, **extra) -> Sample:
    values = {
        "name": f"NMC811 DIT {next(_counter)}",
        "material": "NMC811",
        "fabrication_method": "dit",
        "thickness_um": 600.0,
        "composition": "NMC811:C65:PVDF 90:5:5",
        "nominal_porosity": 0.35,
    }
    return Sample.objects.create(project=project, **{**values, **extra})


def make_cell(project: Project, cathode: Sample | None = None, **extra) -> Cell:
    cathode = cathode or make_sample(project)
    values = {"name": f"CR2032-{next(_counter)}", "electrolyte": "1 M LiPF6 in EC:EMC 3:7"}
    return Cell.objects.create(project=project, cathode=cathode, **{**values, **extra})


def make_charge_state(project: Project, cell: Cell | None = None, **extra) -> ChargeState:
    cell = cell or make_cell(project)
    values = {"state": "charged", "cycle_number": 1, "c_rate": 0.1}
    return ChargeState.objects.create(project=project, cell=cell, **{**values, **extra})


def make_beamtime(project: Project, **extra) -> Beamtime:
    values = {"facility": "Diamond Light Source", "beamline": "I12", "beam_energy_kev": 115.0}
    return Beamtime.objects.create(project=project, **{**values, **extra})


def make_dataset(project: Project, content: bytes | None = None, **extra) -> Dataset:
    values = {"name": f"dataset-{next(_counter)}", "kind": "other", "status": "ready"}
    dataset = Dataset(project=project, **{**values, **extra})
    if content is not None:
        dataset.file.save(f"{dataset.name}.bin", ContentFile(content), save=False)
        dataset.size = len(content)
    dataset.save()
    return dataset
