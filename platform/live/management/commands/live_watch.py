"""Watch a folder where the acquisition software writes HEXITEC data, as a live acquisition.

    python manage.py live_watch FOLDER --project 1 [--name N] [--poll-s 1] [--idle-s 30]
    python manage.py live_watch FOLDER --project 1 --gradients G --intercepts I [--thresholds T]
    python manage.py live_watch FOLDER --acquisition 7 [...]     # resume after a kill

Without calibration maps the folder holds HDF5 event blocks: every new complete block file
becomes the next chunk. With ``--gradients``/``--intercepts`` it holds raw ``.bin`` frames:
the whole frames appended since the last scan become the next chunk (a byte range; a partial
frame waits). Each chunk is clustered and the maps pushed; the acquisition finishes when
nothing new has appeared for ``--idle-s`` seconds. ``--acquisition`` continues an
acquisition this command started before (its watcher was killed) from its stored position.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from projects.models import Project

from analysis_engine.errors import EngineInputError
from live import services
from live.models import AcquisitionStatus, LiveAcquisition


class Command(BaseCommand):
    help = "Follow a folder of HEXITEC event blocks or raw .bin frames as a live acquisition."

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--project", type=int)
        parser.add_argument("--acquisition", type=int, help="resume this acquisition")
        parser.add_argument("--name", default="")
        parser.add_argument("--poll-s", type=float, default=1.0)
        parser.add_argument("--idle-s", type=float, default=30.0)
        parser.add_argument("--options", default="{}", help="acquisition options as JSON")
        parser.add_argument("--gradients", help=".bin input: 80 x 80 gain map (keV/ADU)")
        parser.add_argument("--intercepts", help=".bin input: 80 x 80 offset map (keV)")
        parser.add_argument("--thresholds", help=".bin input: 80 x 80 noise threshold (ADU)")
        parser.add_argument(
            "--max-chunk-frames", type=int, default=4500, help=".bin input: frames per chunk"
        )

    def handle(self, *args, **opts):
        folder = Path(opts["folder"])
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        try:
            acq = self._acquisition(folder, opts)
            is_bin = acq.options.get("input") == "bin"
            last_new = time.monotonic()
            while time.monotonic() - last_new < opts["idle_s"]:
                if is_bin:
                    new = services.scan_bin_folder(acq, folder, max_frames=opts["max_chunk_frames"])
                else:
                    new = services.scan_folder(acq, folder)
                if new:
                    last_new = time.monotonic()
                    services.process(acq.pk)
                time.sleep(opts["poll_s"])
            acq = services.finish(acq.pk)
        except (EngineInputError, services.LiveConflict) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"acquisition": acq.pk, "events_counted": acq.events_counted,
                                      "spectra_dataset": acq.spectra_id}))  # fmt: skip

    def _acquisition(self, folder: Path, opts) -> LiveAcquisition:
        if opts["acquisition"] is not None:
            acq = LiveAcquisition.objects.filter(pk=opts["acquisition"]).first()
            if acq is None or acq.status != AcquisitionStatus.ACQUIRING:
                raise CommandError(f"no acquiring live acquisition {opts['acquisition']}")
            services.process(acq.pk)  # what a killed watcher stored but did not cluster
            return acq
        if opts["project"] is None:
            raise CommandError("give --project (a new acquisition) or --acquisition (resume)")
        try:
            project = Project.objects.get(pk=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {opts['project']}") from exc
        try:
            options = json.loads(opts["options"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--options is not JSON: {exc}") from exc
        calibration = None
        if opts["gradients"] or opts["intercepts"]:
            options = {**options, "input": "bin"}
            calibration = {name: opts[name] for name in ("gradients", "intercepts", "thresholds")}
        return services.create_acquisition(
            project=project, user=None, name=opts["name"] or folder.name, options=options,
            calibration=calibration,
        )  # fmt: skip
