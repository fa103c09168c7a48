"""Load the digital twin of the paper's beamtime as the demo project, and analyse it.

``python manage.py load_demo [--outdir DIR] [--size small] [--seed 0] [--no-pipelines]``

1. Generates the twin (``analysis_engine.synthetic.commands.run_demo_data``) into
   ``var/demo_data/`` unless its ``ground_truth.json`` is already there.
2. Ensures the demo login and its project (``ensure_demo_user``).
3. Imports the twin through the same code path as ``import_beamtime``.
4. Submits the whole-cell pipeline of every cell to the Celery worker
   (``jobs.dispatch.submit_pipeline``) with the per-stage parameters the twin recommends.

Idempotent: a second run finds the files, the catalogue objects, the datasets (same sha256 and
links) and the pipelines (same job key) and creates nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from analysis_engine.errors import EngineInputError

from .import_beamtime import import_beamtime


def demo_dir() -> Path:
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "demo_data"


def ensure_twin(outdir: Path, *, size: str = "small", seed: int = 0, log=print) -> dict:
    """Generate the twin into ``outdir`` unless it is complete there; return its ground truth."""
    from analysis_engine.synthetic.beamtime import TWIN_VERSION
    from analysis_engine.synthetic.commands import run_demo_data

    truth_path = outdir / "ground_truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        if (
            truth.get("size") == size
            and truth.get("seed") == seed
            and truth.get("twin_version") == TWIN_VERSION
            and all((outdir / f).exists() for f in truth.get("files", []))
        ):
            return truth
    log(f"generating the {size} digital twin into {outdir} (about a minute)")
    run_demo_data(outdir, size=size, seed=seed)
    return json.loads(truth_path.read_text())


def submit_cell_pipelines(project, user, cells, parameters: dict, *, log=print) -> list:
    """Submit the whole-cell pipeline of each cell (existing ones are reused by job key)."""
    try:
        from jobs.dispatch import submit_pipeline
    except ImportError as exc:  # the jobs app is optional for the catalogue
        log(f"jobs app not available ({exc}); pipelines not started")
        return []
    jobs = []
    for cell in cells:
        try:
            job, created = submit_pipeline(
                project=project, user=user, cell=cell, parameters=parameters
            )
        except EngineInputError as exc:
            log(f"pipeline for {cell} not started: {exc}")
            continue
        log(f"pipeline for {cell}: job #{job.pk} ({'submitted' if created else 'already there'})")
        jobs.append(job)
    return jobs


class Command(BaseCommand):
    help = "Generate (if absent) and import the digital-twin beamtime into the demo project."

    def add_arguments(self, parser):
        parser.add_argument("--outdir", default=None, help="default var/demo_data")
        parser.add_argument("--size", default="small", choices=("small", "tiny", "paper"))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="correli-demo")
        parser.add_argument(
            "--no-pipelines", action="store_true", help="import only, start no analysis"
        )

    def handle(self, *args, **opts):
        from django.contrib.auth import get_user_model
        from projects.management.commands.ensure_demo_user import DEMO_PROJECT
        from projects.models import Project

        outdir = Path(opts["outdir"]) if opts["outdir"] else demo_dir()
        log = self.stdout.write
        try:
            truth = ensure_twin(outdir, size=opts["size"], seed=opts["seed"], log=log)
        except EngineInputError as exc:
            raise CommandError(str(exc)) from None
        call_command(
            "ensure_demo_user",
            username=opts["username"],
            password=opts["password"],
            stdout=self.stdout,
        )
        user = get_user_model().objects.get(username=opts["username"])
        project = Project.objects.get(name=DEMO_PROJECT)
        try:
            summary = import_beamtime(outdir, project=project, user=user)
        except EngineInputError as exc:
            raise CommandError(str(exc)) from None
        for line in summary.lines():
            log(line)
        if not opts["no_pipelines"]:
            submit_cell_pipelines(
                project, user, summary.cells, truth.get("pipeline_parameters", {}), log=log
            )
        self.stdout.write(self.style.SUCCESS(f"demo project #{project.pk} loaded from {outdir}"))
