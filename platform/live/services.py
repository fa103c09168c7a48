"""Live acquisitions: receive numbered chunks, cluster them in order, push the growing maps.

ORM orchestration only: the clustering is :mod:`analysis_engine.events.incremental`, the
files :mod:`analysis_engine.io.live` and :mod:`analysis_engine.io.spectra`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from catalogue.models import Dataset
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis_engine.errors import EngineInputError
from analysis_engine.events import EnergyBinning, SpectrumAccumulator
from analysis_engine.events.incremental import (
    LiveEventSpectra,
    live_maps,
    raw_frame_accumulator,
)
from analysis_engine.events.timeresolved import li_of_time, time_resolved_spectra
from analysis_engine.io.hexitec import HexitecEventReader
from analysis_engine.io.hexitec_native import read_pixel_calibration, write_calibration_arrays
from analysis_engine.io.live import (
    load_live_state,
    new_bin_spans,
    read_bin_span,
    read_event_chunk,
    save_live_state,
)
from analysis_engine.io.spectra import write_spectra

from .events import publish
from .models import AcquisitionStatus, LiveAcquisition, LiveChunk

log = logging.getLogger(__name__)

DEFAULT_OPTIONS = {
    "bin_width_kev": 0.05,
    "range_kev": [0.0, 160.0],
    "charge_sharing": "paper",
    "target_counts_per_pixel": 10_000.0,
    "incident_kev": 115.0,
    "angle_deg": 90.0,
    "frame_rate_hz": 9000.0,
    # "events": pushed event chunks (append API, HDF5 folder watch); "bin": raw .bin frames
    # of a watched folder, clustered with the acquisition's calibration arrays
    "input": "events",
    "threshold_kev": 5.0,
}
INPUTS = ("events", "bin")
_OPTION_TYPES = {
    "bin_width_kev": float,
    "charge_sharing": str,
    "target_counts_per_pixel": float,
    "incident_kev": float,
    "angle_deg": float,
    "frame_rate_hz": float,
    "input": str,
    "threshold_kev": float,
}
CALIBRATION_MAPS = ("gradients", "intercepts", "thresholds")


class LiveConflict(Exception):
    """The request contradicts the acquisition's state (answered 409)."""


@dataclass(frozen=True)
class ChunkOutcome:
    created: bool
    missing: list[int]


def acquisition_dir(acq: LiveAcquisition) -> Path:
    path = Path(settings.CORRELI_DATA_ROOT) / "live" / str(acq.project_id) / str(acq.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_options(raw: dict | None) -> dict:
    """Options with defaults filled in; a specific EngineInputError for an unknown or bad one."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(DEFAULT_OPTIONS))
    if unknown:
        raise EngineInputError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_OPTIONS)}"
        )
    options = {**DEFAULT_OPTIONS, **raw}
    try:
        for name, kind in _OPTION_TYPES.items():
            options[name] = kind(options[name])
        lo, hi = (float(v) for v in options["range_kev"])
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"bad live acquisition option: {exc}") from exc
    options["range_kev"] = [lo, hi]
    if options["input"] not in INPUTS:
        raise EngineInputError(f"option input must be one of {', '.join(INPUTS)}")
    _event_accumulator(options)  # validates binning and charge sharing
    return options


def _event_accumulator(options: dict) -> SpectrumAccumulator:
    lo, hi = options["range_kev"]
    return SpectrumAccumulator(
        EnergyBinning(lo, hi, options["bin_width_kev"]), charge_sharing=options["charge_sharing"]
    )


def _accumulator(acq: LiveAcquisition) -> SpectrumAccumulator:
    """A fresh accumulator configured as the batch ``events`` command for this input."""
    options = acq.options
    if options.get("input", "events") != "bin":
        return _event_accumulator(options)
    folder = acquisition_dir(acq) / "calibration"
    paths = [folder / f"{name}.npy" for name in CALIBRATION_MAPS]
    cal = read_pixel_calibration(*paths[:2], paths[2] if paths[2].exists() else None)
    lo, hi = options["range_kev"]
    return raw_frame_accumulator(
        EnergyBinning(lo, hi, options["bin_width_kev"]), charge_sharing=options["charge_sharing"],
        gradient_kev_per_adu=cal.gradient_kev_per_adu, intercept_kev=cal.intercept_kev,
        threshold_adu=cal.threshold_for_engine(), bad_pixels=cal.bad_pixels,
        threshold_kev=options["threshold_kev"],
    )  # fmt: skip


def create_acquisition(
    *, project, user, name: str, options: dict | None = None, calibration: dict | None = None
):
    """A new acquisition; ``input: bin`` needs ``calibration`` paths (gradients, intercepts and
    optionally thresholds: 80 x 80 maps as for ``events`` on a ``.bin``), copied into it.

    Raises
    ------
    EngineInputError
        Bad options, or calibration maps missing, unreadable or given for event input.
    """
    options = clean_options(options)
    cal = None
    if options["input"] == "bin":
        calibration = calibration or {}
        if not (calibration.get("gradients") and calibration.get("intercepts")):
            raise EngineInputError(
                "a live acquisition of raw .bin frames needs its per-pixel calibration: "
                "gradients and intercepts maps (and optionally thresholds)"
            )
        cal = read_pixel_calibration(
            calibration["gradients"], calibration["intercepts"], calibration.get("thresholds")
        )
    elif calibration:
        raise EngineInputError("calibration maps are for input 'bin' (raw .bin frames) only")
    acq = LiveAcquisition.objects.create(
        project=project, created_by=user, name=name, options=options
    )
    if cal is not None:
        write_calibration_arrays(
            acquisition_dir(acq) / "calibration", cal.gradient_kev_per_adu, cal.intercept_kev,
            cal.threshold_adu, text=False,
        )  # fmt: skip
    return acq


def missing_chunks(acq: LiveAcquisition) -> list[int]:
    seqs = set(acq.chunks.filter(seq__gt=acq.processed_seq).values_list("seq", flat=True))
    if not seqs:
        return []
    return [s for s in range(acq.processed_seq + 1, max(seqs)) if s not in seqs]


def append_chunk(acq: LiveAcquisition, seq: int, data: bytes) -> ChunkOutcome:
    """Store chunk ``seq`` once; a retry with the same bytes is a no-op, other bytes a conflict.

    Raises
    ------
    LiveConflict
        The acquisition has ended, or chunk ``seq`` was received before with other content.
    EngineInputError
        The bytes are not an event chunk.
    """
    if acq.status != AcquisitionStatus.ACQUIRING:
        raise LiveConflict(f"acquisition {acq.pk} is {acq.status}: it takes no more chunks")
    if acq.options.get("input", "events") == "bin":
        raise LiveConflict(
            f"acquisition {acq.pk} follows raw .bin files in a folder: it takes no pushed chunks"
        )
    digest = hashlib.sha256(data).hexdigest()
    existing = acq.chunks.filter(seq=seq).first()
    if existing is not None:
        if existing.sha256 != digest:
            raise LiveConflict(
                f"chunk {seq} was already received with other content (sha256 "
                f"{existing.sha256[:12]}…); a retry must send the same bytes"
            )
        return ChunkOutcome(created=False, missing=missing_chunks(acq))
    arrays = read_event_chunk(data)
    if bool(arrays["is_adu"]):
        raise EngineInputError(
            "this live acquisition takes events in keV (energy_kev); ADU chunks need a "
            "calibration it does not have"
        )
    path = acquisition_dir(acq) / f"chunk-{seq:09d}.npz"
    path.write_bytes(data)
    try:
        with transaction.atomic():
            LiveChunk.objects.create(
                acquisition=acq, seq=seq, sha256=digest, size=len(data),
                events=len(arrays["frame"]), path=str(path),
            )  # fmt: skip
    except IntegrityError:  # the same chunk raced in through another request
        return append_chunk(acq, seq, data)
    return ChunkOutcome(created=True, missing=missing_chunks(acq))


# The spectra a worker process computed last, per acquisition, with the (checkpoint,
# processed_seq) they equal: the next step of the same acquisition in the same process
# continues from memory instead of reading the checkpoint back (about 80 MB at 0.05 keV bins).
# Only committed steps are kept (set on commit, taken out at the start of a step), so memory
# never runs ahead of the row.
_resident: OrderedDict[int, tuple[tuple, LiveEventSpectra]] = OrderedDict()
_RESIDENT_MAX = 2
_last_checkpoint: dict[int, float] = {}


def _resident_key(acq: LiveAcquisition) -> tuple:
    return (acq.created_at, acq.checkpoint, acq.processed_seq)


def _keep_resident(acq_id: int, key: tuple, live: LiveEventSpectra) -> None:
    _resident[acq_id] = (key, live)
    while len(_resident) > _RESIDENT_MAX:
        _resident.popitem(last=False)


def _load(acq: LiveAcquisition) -> LiveEventSpectra:
    """The spectra of the chunks up to ``processed_seq``: from memory, or the checkpoint plus
    the chunks committed after it was written, clustered again (exactly once)."""
    key, live = _resident.pop(acq.pk, (None, None))
    if live is not None and key == _resident_key(acq) and not live.finished:
        return live
    done = -1
    live = LiveEventSpectra(_accumulator(acq))
    if acq.checkpoint:
        state = load_live_state(acq.checkpoint)
        live = LiveEventSpectra.from_state(_accumulator(acq), state)
        done = int(state["processed_seq"]) if "processed_seq" in state else acq.processed_seq
    for chunk in acq.chunks.filter(seq__gt=done, seq__lte=acq.processed_seq).order_by("seq"):
        _add_chunk(live, acq, chunk)
    return live


def _checkpoint_due(acq: LiveAcquisition) -> bool:
    every = float(getattr(settings, "CORRELI_LIVE_CHECKPOINT_S", 5.0))
    return time.monotonic() - _last_checkpoint.get(acq.pk, -math.inf) >= every


def _add_chunk(live: LiveEventSpectra, acq: LiveAcquisition, chunk: LiveChunk) -> None:
    if acq.options.get("input", "events") == "bin":
        live.add_frames(read_bin_span(chunk.path, chunk.offset, chunk.offset + chunk.size))
        return
    arrays = read_event_chunk(Path(chunk.path).read_bytes())
    live.add_events(arrays["frame"], arrays["row"], arrays["col"], arrays["values"])


def process(acq_id: int, *, force_map: bool = False, held_map: bool = False) -> int:
    """Cluster the chunks that follow ``processed_seq`` without a gap; return how many.

    ``held_map``: also push the map that the interval held back at an earlier step, if it is
    still held (see :func:`held_map_due_in`).

    Resumable: a checkpoint (written at most every ``CORRELI_LIVE_CHECKPOINT_S``) has its own
    name and records the last chunk in it; the row points at it only once the transaction
    commits. A worker killed half-way leaves the row's checkpoint and ``processed_seq``
    consistent: the next run clusters the chunks committed after that checkpoint again, then
    repeats the lost step, each exactly once.
    """
    with transaction.atomic():
        acq = LiveAcquisition.objects.select_for_update().get(pk=acq_id)
        if acq.status != AcquisitionStatus.ACQUIRING:
            _map_held.pop(acq.pk, None)
            return 0
        chunks = list(acq.chunks.filter(seq__gt=acq.processed_seq).order_by("seq"))
        todo = []
        for chunk in chunks:
            if chunk.seq != acq.processed_seq + 1 + len(todo):
                break
            todo.append(chunk)
        force_map = force_map or (held_map and acq.pk in _map_held)
        if not todo and not force_map:
            return 0
        live = _load(acq)
        try:
            for chunk in todo:
                _add_chunk(live, acq, chunk)
        except EngineInputError as exc:
            acq.status, acq.error = AcquisitionStatus.FAILED, f"chunk {chunk.seq}: {exc}"
            acq.save()
            publish(acq.project_id, "live-map", acq.pk, {"id": acq.pk, "status": acq.status,
                                                          "error": acq.error})  # fmt: skip
            return 0
        old = acq.checkpoint
        if todo:
            acq.processed_seq = todo[-1].seq
            acq.first_data_at = acq.first_data_at or todo[0].created_at
            if _checkpoint_due(acq):
                path = acquisition_dir(acq) / f"state-{acq.processed_seq:09d}.npz"
                save_live_state(path, {**live.state(), "processed_seq": acq.processed_seq})
                _last_checkpoint[acq.pk] = time.monotonic()
                acq.checkpoint = str(path)
        stats = live.accumulator.stats
        acq.events_received = live.events_consumed
        acq.events_counted, acq.frames = stats["events_counted"], stats["frames"]
        # the next chunk arrived while this step ran: its step will show the newer map, so
        # this one is skipped (a worker that is behind spends no time on maps nobody sees)
        behind = bool(todo) and acq.chunks.filter(seq=acq.processed_seq + 1).exists()
        push_map(acq, live, force=force_map or not todo, behind=behind)
        acq.save()
        if todo and old and old != acq.checkpoint:
            transaction.on_commit(lambda: Path(old).unlink(missing_ok=True))
        transaction.on_commit(lambda: _keep_resident(acq.pk, _resident_key(acq), live))
    return len(todo)


_last_map: dict[int, float] = {}
# acquisitions whose newest step's map was held back (interval, or behind), and when it is due
_map_held: dict[int, float] = {}


def held_map_due_in(acq_id: int) -> float | None:
    """Seconds until the map held back at the last step of ``acq_id`` is due; None if none.

    Without it a map held back by the interval would wait for the next chunk, which at the end
    of an acquisition or in a pause never comes: the worker task calls :func:`process` again
    with ``held_map=True`` after this delay.
    """
    due = _map_held.get(acq_id)
    return None if due is None else max(due - time.monotonic(), 0.0)


def _grid(values: np.ndarray, digits: int) -> list:
    rounded = np.round(values.astype(np.float64), digits)
    return [[None if not math.isfinite(v) else v for v in row] for row in rounded.tolist()]


def elapsed_s(acq: LiveAcquisition) -> float:
    if acq.first_data_at is None:
        return 0.0
    end = acq.finished_at or timezone.now()
    return max((end - acq.first_data_at).total_seconds(), 0.0)


MAX_MAP_DEFER_S = 2.0


def push_map(
    acq: LiveAcquisition, live: LiveEventSpectra, *, force: bool = False, behind: bool = False
) -> None:
    """Recompute S and Li maps (at most every CORRELI_LIVE_MAP_INTERVAL_S) and push them.

    ``behind``: more data is already waiting, so the map is left to the next step unless
    none was pushed for ``max(MAX_MAP_DEFER_S, interval)`` seconds.
    """
    interval = float(getattr(settings, "CORRELI_LIVE_MAP_INTERVAL_S", 2.0))
    now = time.monotonic()
    since = now - _last_map.get(acq.pk, -math.inf)
    if not force and (since < interval or (behind and since < max(MAX_MAP_DEFER_S, interval))):
        wait = max(MAX_MAP_DEFER_S, interval) if behind else interval
        _map_held[acq.pk] = now - since + wait
        return
    _map_held.pop(acq.pk, None)
    _last_map[acq.pk] = now
    snap = live.snapshot()
    t = elapsed_s(acq)
    maps = live_maps(
        snap.pixel_histograms, snap.energy_bins_kev, elapsed_s=t,
        target_counts_per_pixel=acq.options["target_counts_per_pixel"],
        incident_kev=acq.options["incident_kev"], angle_deg=acq.options["angle_deg"],
    )  # fmt: skip
    li_pixels = maps.li[np.isfinite(maps.li)]
    acq.summary = {
        "events_counted": acq.events_counted,
        "frames": acq.frames,
        "elapsed_s": round(t, 3),
        "event_rate_hz": round(acq.events_received / t, 1) if t > 0 else None,
        "median_counts_per_pixel": maps.median_counts_per_pixel,
        "seconds_to_target": maps.seconds_to_target,
        "li_mean": float(li_pixels.mean()) if li_pixels.size else None,
        "pixels_with_li": int(li_pixels.size),
        "processed_seq": acq.processed_seq,
        "map_computed_at": timezone.now().isoformat(),
    }
    if acq.options.get("input") == "bin" and acq.processed_seq >= 0:
        done = acq.chunks.get(seq=acq.processed_seq)
        acq.summary["bin_position"] = [Path(done.path).name, done.offset + done.size]
    publish(
        acq.project_id,
        "live-map",
        acq.pk,
        {
            "id": acq.pk,
            "status": acq.status,
            **acq.summary,
            "target_counts_per_pixel": acq.options["target_counts_per_pixel"],
            "li": _grid(maps.li, 4),
            "li_sigma": _grid(maps.li_sigma, 4),
            "counts": maps.counts_per_pixel.tolist(),
        },
    )


def finish(acq_id: int) -> LiveAcquisition:
    """End the acquisition: cluster the last frame, store the spectra as a dataset.

    Raises
    ------
    LiveConflict
        Chunks are missing (a gap in the sequence) or it is not acquiring.
    """
    process(acq_id)
    with transaction.atomic():
        acq = LiveAcquisition.objects.select_for_update().get(pk=acq_id)
        if acq.status != AcquisitionStatus.ACQUIRING:
            raise LiveConflict(f"acquisition {acq.pk} is already {acq.status}")
        gaps = missing_chunks(acq)
        waiting = acq.chunks.filter(seq__gt=acq.processed_seq).count()
        if gaps or waiting:
            raise LiveConflict(
                f"chunks {gaps[:20]} are missing (received up to {acq.processed_seq} in order, "
                f"{waiting} waiting after the gap); send them before finishing"
            )
        live = _load(acq)
        result = live.finish()
        out = acquisition_dir(acq) / "spectra.h5"
        lo, hi = acq.options["range_kev"]
        bad = live.accumulator._mask.reshape(result.pixel_histograms.shape[:2])
        write_spectra(
            out, result.energy_bins_kev, result.pixel_histograms,
            bad_pixels=bad if bad.any() else None,
            attrs={"bin_width_kev": acq.options["bin_width_kev"], "range_kev": [lo, hi],
                   "charge_sharing": acq.options["charge_sharing"],
                   "summary": {**result.stats}, "source_file": f"live acquisition {acq.pk}"},
        )  # fmt: skip
        data = out.read_bytes()
        dataset = Dataset(
            project=acq.project, name=f"{acq.name} spectra.h5", kind="xcs_spectra",
            status="ready", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        )  # fmt: skip
        with out.open("rb") as fh:
            dataset.file.save(f"{acq.name}-live-{acq.pk}-spectra.h5", File(fh), save=False)
        dataset.save()
        acq.status, acq.finished_at, acq.spectra = (
            AcquisitionStatus.FINISHED,
            timezone.now(),
            dataset,
        )
        stats = result.stats
        acq.events_counted, acq.frames = stats["events_counted"], stats["frames"]
        push_map(acq, live, force=True)
        acq.save()
    return acq


MAX_TIME_SLICES = 200
TIME_BIN_WIDTH_KEV = 0.5


def time_resolved(acq: LiveAcquisition, *, slice_s: float, n_regions: int = 3) -> dict:
    """Li map per time slice and per-region Li(t) of the chunks clustered so far.

    Regions are ``n_regions`` equal bands along the detector rows (region 1 at row 0), as the
    depth regions of the paper. Spectra use 0.5 keV bins to keep one cube per slice small.

    Raises
    ------
    EngineInputError
        Bad slice length or region count, no data yet, or too many slices.
    """
    if not 1 <= n_regions <= 80:
        raise EngineInputError(f"regions must be 1..80, got {n_regions}")
    if acq.options.get("input", "events") == "bin":
        raise EngineInputError(
            "time-resolved maps re-bin event chunks; this acquisition follows raw .bin frames"
        )
    chunks = list(acq.chunks.filter(seq__lte=acq.processed_seq).order_by("seq"))
    if not chunks:
        raise EngineInputError("no chunk has been clustered yet: nothing to re-bin in time")
    arrays = [read_event_chunk(Path(c.path).read_bytes()) for c in chunks]
    frame, row, col, values = (np.concatenate([a[k] for a in arrays])
                               for k in ("frame", "row", "col", "values"))  # fmt: skip
    rate = acq.options.get("frame_rate_hz", DEFAULT_OPTIONS["frame_rate_hz"])
    frames_per_slice = rate * slice_s
    if frames_per_slice >= 1 and (int(frame[-1]) + 1) / frames_per_slice > MAX_TIME_SLICES:
        raise EngineInputError(
            f"{slice_s} s slices would make more than {MAX_TIME_SLICES} time slices; "
            "choose longer slices"
        )
    lo, hi = acq.options["range_kev"]
    t, bins, cubes = time_resolved_spectra(
        frame, row, col, values, frame_rate_hz=rate, slice_s=slice_s,
        bin_width_kev=max(acq.options["bin_width_kev"], TIME_BIN_WIDTH_KEV), range_kev=(lo, hi),
        charge_sharing=acq.options["charge_sharing"],
    )  # fmt: skip
    regions = (np.arange(80) * n_regions // 80 + 1)[:, None] * np.ones((1, 80), dtype=int)
    curve = li_of_time(t, bins, cubes, regions=regions, incident_kev=acq.options["incident_kev"],
                       angle_deg=acq.options["angle_deg"])  # fmt: skip
    maps = [
        _grid(live_maps(c, bins, elapsed_s=slice_s, incident_kev=acq.options["incident_kev"],
                        angle_deg=acq.options["angle_deg"]).li, 4)
        for c in cubes
    ]  # fmt: skip

    def clean(a):
        return [None if not math.isfinite(v) else round(float(v), 6) for v in np.ravel(a)]

    return {
        "slice_s": slice_s,
        "t_s": clean(t),
        "regions": [
            {
                "region": r + 1,
                "li": clean(curve.li[r]),
                "li_sigma": clean(curve.li_sigma[r]),
                "rate_per_s": clean(curve.rate_per_s[r])[0],
                "rate_sigma_per_s": clean(curve.rate_sigma_per_s[r])[0],
            }
            for r in range(n_regions)
        ],  # fmt: skip
        "li_maps": maps,
    }


def _npz(frame, row, col, energy_kev) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, frame=frame, row=row, col=col, energy_kev=energy_kev)
    return buffer.getvalue()


def scan_folder(acq: LiveAcquisition, folder: str | Path) -> list[int]:
    """Take the HDF5 event blocks an acquisition has written into ``folder`` so far.

    The acquisition software writes one HEXITEC event-list file per block (names that sort in
    acquisition order, e.g. ``block-000001.h5``). File i becomes chunk i, so a rescan is
    idempotent; a file still being written (unreadable yet) and everything after it wait for
    the next scan. Returns the sequence numbers newly stored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineInputError(f"{folder} is not a folder")
    created = []
    for seq, path in enumerate(sorted(folder.glob("*.h5"))):
        try:
            with HexitecEventReader(path) as reader:
                is_adu, n_events = reader.is_adu, reader.n_events
                blocks = list(reader.blocks()) if n_events and not is_adu else []
        except EngineInputError as exc:
            log.info("live watch: %s not readable yet (%s); waiting", path.name, exc)
            break
        if is_adu:
            raise EngineInputError(f"{path.name} holds ADU events; the folder watch takes keV")
        if not n_events:
            continue
        parts = [np.concatenate([getattr(b, k) for b in blocks])
                 for k in ("frame", "row", "col", "values")]  # fmt: skip
        if append_chunk(acq, seq, _npz(*parts)).created:
            created.append(seq)
    return created


def scan_bin_folder(
    acq: LiveAcquisition, folder: str | Path, *, max_frames: int = 4500
) -> list[int]:
    """Take the whole raw frames the acquisition software has appended to ``folder/*.bin``.

    Each new stretch of whole frames (at most ``max_frames``) becomes the next chunk: a byte
    range of the file, not a copy. The position to continue from is the end of the last
    chunk (file name and byte offset), stored with it, so a rescan, or a new watcher after
    a kill, never takes a frame twice; a partial frame waits for the writer, and files are
    taken in name order (see :func:`analysis_engine.io.live.new_bin_spans`). Returns the
    sequence numbers newly stored.
    """
    if acq.options.get("input", "events") != "bin":
        raise EngineInputError(f"acquisition {acq.pk} takes event chunks, not raw .bin frames")
    if acq.status != AcquisitionStatus.ACQUIRING:
        raise LiveConflict(f"acquisition {acq.pk} is {acq.status}: it takes no more frames")
    folder = Path(folder).resolve()
    last = acq.chunks.order_by("-seq").first()
    if last is not None and Path(last.path).parent != folder:
        raise EngineInputError(
            f"acquisition {acq.pk} follows {Path(last.path).parent}, not {folder}"
        )
    position = None if last is None else (Path(last.path).name, last.offset + last.size)
    spans, skipped = new_bin_spans(folder, position, max_frames=max_frames)
    for name, n_bytes in skipped:
        log.warning("live watch: %s ended with a partial frame of %d bytes (left out)", name,
                    n_bytes)  # fmt: skip
    seq = -1 if last is None else last.seq
    created = []
    for span in spans:
        seq += 1
        ident = f"bin:{span.name}:{span.start}:{span.stop}"
        LiveChunk.objects.create(
            acquisition=acq, seq=seq, sha256=hashlib.sha256(ident.encode()).hexdigest(),
            size=span.stop - span.start, offset=span.start, events=0,
            path=str(folder / span.name),
        )  # fmt: skip
        created.append(seq)
    return created
