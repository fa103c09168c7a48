"""Replay a HEXITEC event file as a live acquisition (the twin's beamtime, or a real one).

Reads the file in chunks of ``--chunk-s`` seconds of detector time, pushes each chunk as the
append API would (numbered, idempotent), clusters it and pushes the maps to open pages, paced
at the detector's frame rate times ``--speed`` (0: as fast as possible); then finishes.

    python manage.py live_replay EVENTS.h5 --project 1 [--name N] [--speed 1] [--chunk-s 0.5]
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from projects.models import Project

from analysis_engine.errors import EngineInputError
from analysis_engine.io.hexitec import HexitecEventReader
from live import services


class Command(BaseCommand):
    help = "Replay a HEXITEC event list as a live acquisition (paced at the frame rate)."

    def add_arguments(self, parser):
        parser.add_argument("events", help="HEXITEC event list (HDF5, energies in keV)")
        parser.add_argument("--project", type=int, required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--user", default="", help="username recorded as the creator")
        parser.add_argument("--speed", type=float, default=1.0, help="x real time; 0 = no pause")
        parser.add_argument("--chunk-s", type=float, default=0.5)
        parser.add_argument("--options", default="{}", help="acquisition options as JSON")

    def handle(self, *args, **opts):
        try:
            project = Project.objects.get(pk=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {opts['project']}") from exc
        user = get_user_model().objects.filter(username=opts["user"]).first()
        try:
            with HexitecEventReader(opts["events"]) as reader:
                if reader.is_adu:
                    raise CommandError("replay needs events in keV (/events/energy_kev)")
                rate = reader.frame_rate_hz or 9000.0
                span = reader.frame_span()
                frames = 1 if span is None else span[1] - span[0] + 1
                # about chunk_s of detector time per chunk, at the file's mean event rate
                per_chunk = max(int(reader.n_events / frames * rate * opts["chunk_s"]), 1)
                acq = services.create_acquisition(
                    project=project, user=user, name=opts["name"] or reader.path.stem,
                    options={"frame_rate_hz": rate, **json.loads(opts["options"])},
                )  # fmt: skip
                start = time.monotonic()
                for seq, block in enumerate(reader.blocks(per_chunk)):
                    buffer = io.BytesIO()
                    np.savez(buffer, frame=block.frame, row=block.row, col=block.col,
                             energy_kev=block.values)  # fmt: skip
                    if opts["speed"] > 0:
                        due = start + (int(block.frame[-1]) + 1) / rate / opts["speed"]
                        time.sleep(max(due - time.monotonic(), 0.0))
                    services.append_chunk(acq, seq, buffer.getvalue())
                    services.process(acq.pk)
                    self.stderr.write(f"chunk {seq}: {block.start + len(block.frame):,} events")
        except EngineInputError as exc:
            raise CommandError(str(exc)) from exc
        acq = services.finish(acq.pk)
        self.stdout.write(json.dumps({
            "acquisition": acq.pk, "events_counted": acq.events_counted, "frames": acq.frames,
            "spectra_dataset": acq.spectra_id, "elapsed_s": round(time.monotonic() - start, 3),
        }))  # fmt: skip
