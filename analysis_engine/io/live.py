"""Files of a live acquisition: event chunks pushed by a beamline script, resume checkpoints.

An event chunk is a NumPy ``.npz`` archive (no pickles) with the HEXITEC event-list arrays
``frame``, ``row``, ``col`` and ``energy_kev`` (or ``adu``), sorted by frame; a chunk may
end in the middle of a frame (the next chunk continues it). A checkpoint is the ``.npz`` of
:meth:`analysis_engine.events.incremental.LiveEventSpectra.state`, written atomically.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output

__all__ = ["load_live_state", "read_event_chunk", "save_live_state"]


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
