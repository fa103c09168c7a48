"""Import a beamtime directory described by a manifest (YAML or CSV) into a project.

``python manage.py import_beamtime DIRECTORY --project ID_OR_NAME [--user NAME] [--dry-run]``

Creates or reuses the Beamtime, Samples, Cells and ChargeStates the manifest names, copies
every listed file into the project's dataset storage and validates it with
``analysis_engine.io.sniff`` (status ``ready``, or ``rejected`` with the engine's message).
Per-pixel HEXITEC calibration arrays listed under ``calibrations`` are checked with the engine
(80 x 80, non-finite = bad pixel) before anything is created, stored as detector calibrations
of the beamtime, and linked to the ``.bin`` datasets that name them (``metadata
["detector_calibration"]``); event jobs on those datasets use them.

Idempotent: a file whose sha256 and links (kind, cell, charge state, region) match an existing
dataset of the project is skipped, so running it twice creates nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from analysis_engine.errors import EngineInputError
from analysis_engine.io.hexitec_native import read_pixel_calibration
from analysis_engine.io.manifest import BeamtimeManifest, read_manifest

__all__ = ["ImportSummary", "import_beamtime", "resolve_project"]


@dataclass
class ImportSummary:
    """What an import did: created/reused counts per model and the datasets by outcome."""

    created: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    datasets: list = field(default_factory=list)  # every dataset of the manifest, in order
    new_datasets: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    cells: list = field(default_factory=list)

    def count(self, model: str, created: bool) -> None:
        bucket = self.created if created else self.reused
        bucket[model] = bucket.get(model, 0) + 1

    def lines(self) -> list[str]:
        names = sorted({*self.created, *self.reused})
        out = [
            f"{n}: {self.created.get(n, 0)} created, {self.reused.get(n, 0)} reused" for n in names
        ]
        out += [f"rejected {d.name}: {d.status_message}" for d in self.rejected]
        return out


def resolve_project(value: str):
    """A project by primary key or exact name."""
    from projects.models import Project

    qs = Project.objects.all()
    project = qs.filter(pk=int(value)).first() if str(value).isdigit() else None
    project = project or qs.filter(name=value).first()
    if project is None:
        raise CommandError(f"no project with id or name {value!r}")
    return project


def _get_or_create(model, summary: ImportSummary, lookup: dict, defaults: dict):
    obj, created = model.objects.get_or_create(**lookup, defaults=defaults)
    summary.count(model.__name__, created)
    return obj


def import_beamtime(
    directory, *, project, user=None, manifest: BeamtimeManifest | None = None
) -> ImportSummary:
    """Import the files of ``directory`` (with its manifest) into ``project``; idempotent.

    Raises
    ------
    EngineInputError
        The manifest is missing or invalid (every problem is listed), or a cell's cathode is
        neither in the manifest nor already in the project.
    """
    from catalogue.models import (
        Beamtime,
        Cell,
        ChargeState,
        Dataset,
        DatasetStatus,
        DetectorCalibration,
        Sample,
    )
    from catalogue.services import file_sha256, validate_dataset_file

    manifest = manifest or read_manifest(directory)
    summary = ImportSummary()
    if manifest.calibrations and not manifest.beamtime:
        raise EngineInputError(
            "the manifest lists detector calibrations but no beamtime to attach them to"
        )
    checked = {
        c.name: read_pixel_calibration(c.gradients, c.intercepts, c.thresholds)
        for c in manifest.calibrations
    }
    with transaction.atomic():
        beamtime = None
        if manifest.beamtime:
            bt = dict(manifest.beamtime)
            lookup = {
                "project": project,
                "facility": bt.pop("facility"),
                "beamline": bt.pop("beamline"),
                "proposal": bt.pop("proposal", ""),
            }
            beamtime = _get_or_create(Beamtime, summary, lookup, bt)
        samples = {}
        for s in manifest.samples:
            fields = dict(s)
            name = fields.pop("name")
            samples[name] = _get_or_create(
                Sample, summary, {"project": project, "name": name}, fields
            )
        cells = {}
        for c in manifest.cells:
            fields = dict(c)
            name, cathode_name = fields.pop("name"), fields.pop("cathode")
            cathode = (
                samples.get(cathode_name)
                or Sample.objects.filter(project=project, name=cathode_name).first()
            )
            if cathode is None:
                raise EngineInputError(f"cell {name}: cathode sample {cathode_name!r} not found")
            cells[name] = _get_or_create(
                Cell, summary, {"project": project, "name": name}, {**fields, "cathode": cathode}
            )
        summary.cells = list(cells.values())
        calibrations = {}
        for cal in manifest.calibrations:
            obj = DetectorCalibration.objects.filter(beamtime=beamtime, name=cal.name).first()
            summary.count("DetectorCalibration", obj is None)
            if obj is None:
                obj = DetectorCalibration(
                    project=project,
                    beamtime=beamtime,
                    name=cal.name,
                    notes=cal.notes,
                    bad_pixels=int(checked[cal.name].bad_pixels.sum()),
                )
                for field_name in ("gradients", "intercepts", "thresholds"):
                    source = getattr(cal, field_name)
                    if source is not None:
                        with open(source, "rb") as fh:
                            getattr(obj, field_name).save(source.name, File(fh), save=False)
                obj.save()
            calibrations[cal.name] = obj
        states = {}
        for s in manifest.charge_states:
            fields = dict(s)
            cell = cells[fields.pop("cell")]
            key = (cell.pk, fields.pop("state"), fields.pop("cycle_number", 0))
            states[key] = _get_or_create(
                ChargeState,
                summary,
                {"project": project, "cell": cell, "state": key[1], "cycle_number": key[2]},
                fields,
            )

    for entry in manifest.files:
        cell = cells.get(entry.cell) if entry.cell else None
        state = None
        if entry.state and cell is not None:
            wanted = [k for k in states if k[0] == cell.pk and k[1] == entry.state]
            if entry.cycle_number is not None:
                wanted = [k for k in wanted if k[2] == entry.cycle_number]
            if wanted:
                state = states[wanted[0]]
            else:
                cycle = entry.cycle_number or 0
                state = _get_or_create(
                    ChargeState,
                    summary,
                    {"project": project, "cell": cell, "state": entry.state, "cycle_number": cycle},
                    {},
                )
                states[(cell.pk, entry.state, cycle)] = state
        sha256, size = file_sha256(entry.path)
        existing = Dataset.objects.filter(
            project=project,
            sha256=sha256,
            kind=entry.kind,
            cell=cell,
            charge_state=state,
            region=entry.region,
        ).first()
        if existing is not None:
            summary.count("Dataset", False)
            summary.datasets.append(existing)
            continue
        name = entry.name or Path(entry.relative_path).name
        dataset = Dataset(
            project=project,
            kind=entry.kind,
            name=name,
            cell=cell,
            charge_state=state,
            beamtime=beamtime,
            region=entry.region,
            sha256=sha256,
            size=size,
            status=DatasetStatus.VALIDATING,
            created_by=user,
            notes=entry.notes,
            metadata={"imported_from": entry.relative_path}
            | (
                {"detector_calibration": calibrations[entry.calibration].pk}
                if entry.calibration
                else {}
            ),
        )
        with open(entry.path, "rb") as fh:
            dataset.file.save(name, File(fh, name=name), save=False)
        dataset.save()
        validate_dataset_file(dataset, compute_checksum=False)
        summary.count("Dataset", True)
        summary.datasets.append(dataset)
        summary.new_datasets.append(dataset)
        if dataset.status == DatasetStatus.REJECTED:
            summary.rejected.append(dataset)
    return summary


class Command(BaseCommand):
    help = (
        "Import a beamtime directory with a manifest (manifest.yaml/.yml/.csv) into a project: "
        "catalogue objects are created or reused, files copied and validated. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="beamtime directory (or the manifest file)")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--user", help="username recorded as the datasets' creator")
        parser.add_argument(
            "--dry-run", action="store_true", help="only validate the manifest and files"
        )

    def handle(self, *args, directory, project, user=None, dry_run=False, **options):
        from django.contrib.auth import get_user_model

        try:
            manifest = read_manifest(directory)
        except EngineInputError as exc:
            raise CommandError(str(exc)) from None
        if dry_run:
            self.stdout.write(
                f"manifest OK: {len(manifest.files)} files, {len(manifest.cells)} cells, "
                f"{len(manifest.samples)} samples"
            )
            return
        target = resolve_project(project)
        creator = None
        if user:
            creator = get_user_model().objects.filter(username=user).first()
            if creator is None:
                raise CommandError(f"no user named {user!r}")
        try:
            summary = import_beamtime(directory, project=target, user=creator, manifest=manifest)
        except EngineInputError as exc:
            raise CommandError(str(exc)) from None
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"imported into project #{target.pk}: {len(summary.new_datasets)} new datasets, "
                f"{len(summary.datasets) - len(summary.new_datasets)} already present"
            )
        )
