"""Files of a live acquisition: event chunks pushed by a beamline script, resume checkpoints.

An event chunk is a NumPy ``.npz`` archive (no pickles) with the HEXITEC event-list arrays
``frame``, ``row``, ``col`` and ``energy_kev`` (or ``adu``), sorted by frame; a chunk may
end in the middle of a frame (the next chunk continues it). A checkpoint is the ``.npz`` of
:meth:`analysis_engine.events.incremental.LiveEventSpectra.state`, written atomically.

Raw HEXITEC ``.bin`` files that the acquisition software is still writing are followed by
:func:`new_bin_spans` (which whole frames have appeared since a byte position) and read by
:func:`read_bin_span`.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output
from analysis_engine.io.hexitec_native import COLS, FRAME_BYTES, ROWS, descramble_frames

__all__ = [
    "BinSpan",
    "load_live_state",
    "new_bin_spans",
    "read_bin_span",
    "read_event_chunk",
    "save_live_state",
]


def read_event_chunk(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of one pushed event chunk (``frame``, ``row``, ``col``, ``values``, ``is_adu``).

    Raises
    ------
    EngineInputError
        Not an ``.npz`` archive, arrays missing, of different lengths or of the wrong kind.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EngineInputError(
            f"an event chunk must be a NumPy .npz archive of frame, row, col and energy_kev "
            f"(or adu) arrays: {exc}"
        ) from exc
    missing = [name for name in ("frame", "row", "col") if name not in arrays]
    if ("energy_kev" in arrays) == ("adu" in arrays):
        missing.append("energy_kev or adu (exactly one)")
    if missing:
        raise EngineInputError(f"event chunk lacks {', '.join(missing)}; found {sorted(arrays)}")
    is_adu = "adu" in arrays
    out = {
        "frame": arrays["frame"],
        "row": arrays["row"],
        "col": arrays["col"],
        "values": arrays["adu"] if is_adu else arrays["energy_kev"].astype(np.float32, copy=False),
    }
    lengths = {name: a.shape for name, a in out.items()}
    if any(a.ndim != 1 for a in out.values()) or len({a.shape[0] for a in out.values()}) != 1:
        raise EngineInputError(f"event chunk arrays must be 1-D of one length, got {lengths}")
    for name in ("frame", "row", "col"):
        if out[name].dtype.kind not in "ui":
            raise EngineInputError(f"event chunk {name} must be integers, got {out[name].dtype}")
    out["is_adu"] = np.array(is_adu)
    return out


def save_live_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a live-spectra checkpoint atomically (a crash leaves the previous one intact)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **state)


def load_live_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a checkpoint written by :func:`save_live_state`."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EngineInputError(f"live checkpoint {os.fspath(path)} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class BinSpan:
    """Whole frames ``[start, stop)`` (bytes) of the ``.bin`` file ``name`` in a folder."""

    name: str
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return (self.stop - self.start) // FRAME_BYTES


def new_bin_spans(
    folder: str | os.PathLike,
    position: tuple[str, int] | None,
    *,
    max_frames: int = 4500,
) -> tuple[list[BinSpan], list[tuple[str, int]]]:
    """The whole frames written into a folder of ``.bin`` files since ``position``.

    The acquisition software writes raw frames into ``*.bin`` files whose names sort in
    acquisition order, appending to the newest one and at some point starting the next
    ("rotation"). Only whole frames (12 800 bytes) are taken: a partial frame at the end of
    the newest file waits until the writer completes it. A file is over once a later file
    exists: the folder is listed *before* each file's size is read, so a size read after the
    next file appeared includes everything the writer put there; a trailing partial frame of
    such a file is never completed and is left out, as the batch ``events`` command leaves it
    out (it is reported in the second return value).

    Parameters
    ----------
    folder
        The watched folder.
    position
        ``(file name, byte offset)`` up to which frames were already taken, or None to start
        at the first file.
    max_frames
        At most this many frames per span (a long stretch is cut into several spans).

    Returns
    -------
    spans : list of BinSpan
        New whole-frame byte ranges, in acquisition order; the position after the last one
        is the next call's ``position``.
    skipped : list of (str, int)
        Files left behind with the size in bytes of their trailing partial frame (non-zero).

    Raises
    ------
    EngineInputError
        Not a folder, the file of ``position`` is gone or shorter than ``position``, or a
        bad ``max_frames``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineInputError(f"{folder} is not a folder")
    if max_frames < 1:
        raise EngineInputError(f"max_frames must be positive, got {max_frames}")
    names = sorted(p.name for p in folder.glob("*.bin") if p.is_file())
    if position is None:
        if not names:
            return [], []
        name, offset = names[0], 0
    else:
        name, offset = position
        if name not in names:
            raise EngineInputError(
                f"{name} was followed up to byte {offset} but is no longer in {folder}"
            )
        if offset % FRAME_BYTES:
            raise EngineInputError(f"byte position {offset} of {name} is not a frame boundary")
    spans: list[BinSpan] = []
    skipped: list[tuple[str, int]] = []
    i = names.index(name)
    step = max_frames * FRAME_BYTES
    while True:
        size = (folder / name).stat().st_size
        if size < offset:
            raise EngineInputError(
                f"{name} shrank to {size} bytes after {offset} bytes were read from it"
            )
        whole = offset + (size - offset) // FRAME_BYTES * FRAME_BYTES
        while offset < whole:
            stop = min(offset + step, whole)
            spans.append(BinSpan(name, offset, stop))
            offset = stop
        if i + 1 >= len(names):
            break
        if size > whole:
            skipped.append((name, size - whole))
        i += 1
        name, offset = names[i], 0
    return spans, skipped


def read_bin_span(path: str | os.PathLike, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` (bytes, whole frames) of a ``.bin`` file, (n, 80, 80) uint16.

    Raises
    ------
    EngineInputError
        The range is not whole frames, or the file is shorter than ``stop``.
    """
    if start < 0 or stop < start or start % FRAME_BYTES or stop % FRAME_BYTES:
        raise EngineInputError(f"bytes {start}:{stop} are not whole {FRAME_BYTES}-byte frames")
    n = (stop - start) // FRAME_BYTES
    raw = np.empty((n, ROWS * COLS), "<u2")
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            got = fh.readinto(memoryview(raw).cast("B"))
    except OSError as exc:
        raise EngineInputError(f"cannot read {Path(path).name}: {exc}") from exc
    if got != raw.nbytes:
        raise EngineInputError(
            f"{Path(path).name} holds {start + got} bytes; frames up to byte {stop} were expected"
        )
    return descramble_frames(raw)
