"""Watch a folder where the acquisition software writes HEXITEC event blocks (HDF5 files).

    python manage.py live_watch FOLDER --project 1 [--name N] [--poll-s 1] [--idle-s 30]

Creates a live acquisition, takes every new complete block file as the next chunk, clusters
it and pushes the maps; finishes when no new file has appeared for ``--idle-s`` seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from projects.models import Project

from analysis_engine.errors import EngineInputError
from live import services


class Command(BaseCommand):
    help = "Follow a folder of HEXITEC event blocks as a live acquisition."

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--project", type=int, required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--poll-s", type=float, default=1.0)
        parser.add_argument("--idle-s", type=float, default=30.0)
        parser.add_argument("--options", default="{}", help="acquisition options as JSON")

    def handle(self, *args, **opts):
        folder = Path(opts["folder"])
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        try:
            project = Project.objects.get(pk=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {opts['project']}") from exc
        try:
            acq = services.create_acquisition(
                project=project, user=None, name=opts["name"] or folder.name,
                options=json.loads(opts["options"]),
            )  # fmt: skip
            last_new = time.monotonic()
            while time.monotonic() - last_new < opts["idle_s"]:
                if services.scan_folder(acq, folder):
                    last_new = time.monotonic()
                    services.process(acq.pk)
                time.sleep(opts["poll_s"])
            acq = services.finish(acq.pk)
        except (EngineInputError, services.LiveConflict) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"acquisition": acq.pk, "events_counted": acq.events_counted,
                                      "spectra_dataset": acq.spectra_id}))  # fmt: skip
