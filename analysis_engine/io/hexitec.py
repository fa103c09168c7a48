"""HEXITEC detector files: photon event lists, raw frames and per-pixel calibrations.

Layouts (``docs/formats.md``):

- event list: ``/events/frame`` (uint32/uint64), ``/events/row``, ``/events/col`` (uint8 or
  wider), and either ``/events/energy_kev`` (float32) or ``/events/adu`` (uint16) with
  ``/calibration/gain_kev_per_adu`` and ``/calibration/offset_kev`` (rows, cols). Root attrs
  ``frame_rate_hz``, ``rows``, ``cols`` (default 80), optional ``n_frames``.
- raw frames: ``/raw_frames`` (n_frames, rows, cols) uint16 ADU chunked by frames, the same
  ``/calibration/*`` and root attr ``threshold_kev``.
- calibration (written by ``events-calibrate``, also accepted inside both inputs):
  ``/calibration/gain_kev_per_adu``, ``/calibration/offset_kev``, optional
  ``/calibration/fwhm_kev`` and ``/calibration/bad_pixels`` (uint8, nonzero = pixel ignored).

Readers stream in blocks of whole frames, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, open_hdf5, write_json_attrs

__all__ = [
    "Calibration",
    "EventBlock",
    "HexitecEventReader",
    "HexitecEventsWriter",
    "HexitecFrameReader",
    "HexitecFramesWriter",
    "inspect_events",
    "inspect_frames",
    "read_calibration",
    "write_calibration",
    "write_hexitec_events",
    "write_hexitec_frames",
]

GAIN = "/calibration/gain_kev_per_adu"
OFFSET = "/calibration/offset_kev"
FWHM = "/calibration/fwhm_kev"
BAD_PIXELS = "/calibration/bad_pixels"


@dataclass(frozen=True)
class Calibration:
    """Per-pixel linear calibration ``E = gain * adu + offset`` (keV), arrays (rows, cols)."""

    gain_kev_per_adu: np.ndarray
    offset_kev: np.ndarray
    bad_pixels: np.ndarray | None = None
    fwhm_kev: np.ndarray | None = None


@dataclass(frozen=True)
class EventBlock:
    """Events of whole frames: ``values`` are keV (float) or ADU; ``start`` is the file index."""

    frame: np.ndarray
    row: np.ndarray
    col: np.ndarray
    values: np.ndarray
    start: int


def _name(f: h5py.File) -> str:
    return Path(f.filename).name


def _detector_shape(f: h5py.File) -> tuple[int, int]:
    try:
        rows = int(f.attrs.get("rows", 80))
        cols = int(f.attrs.get("cols", 80))
    except (TypeError, ValueError):
        raise EngineInputError(f"{_name(f)}: root attrs rows/cols are not integers") from None
    if rows < 1 or cols < 1 or rows > 4096 or cols > 4096:
        raise EngineInputError(f"{_name(f)}: detector size rows={rows}, cols={cols} is invalid")
    return rows, cols


def _read_calibration_group(
    f: h5py.File, rows: int, cols: int, *, required: bool
) -> Calibration | None:
    has_gain, has_offset = (
        isinstance(f.get(GAIN), h5py.Dataset),
        isinstance(f.get(OFFSET), h5py.Dataset),
    )
    if not (has_gain or has_offset):
        if required:
            raise EngineInputError(
                f"{_name(f)} has ADU values but no calibration: expected {GAIN} and {OFFSET} "
                f"({rows}, {cols}), or pass a calibration file"
            )
        return None
    if not (has_gain and has_offset):
        missing = OFFSET if has_gain else GAIN
        raise EngineInputError(f"{_name(f)} has no dataset {missing}")
    maps = {}
    for path in (GAIN, OFFSET, FWHM, BAD_PIXELS):
        ds = f.get(path)
        if ds is None:
            continue
        if not isinstance(ds, h5py.Dataset) or ds.shape != (rows, cols):
            shape = getattr(ds, "shape", None)
            raise EngineInputError(
                f"{_name(f)}: {path} has shape {shape}; expected ({rows}, {cols})"
            )
        if ds.dtype.kind not in "fiub":
            raise EngineInputError(f"{_name(f)}: {path} has non-numeric dtype {ds.dtype}")
        try:
            maps[path] = ds[()]
        except OSError as exc:
            raise EngineInputError(f"{_name(f)}: cannot read {path} (truncated?): {exc}") from None
    # NaN marks a pixel the calibration could not fit: it is masked, not an error
    unusable = ~(np.isfinite(maps[GAIN]) & np.isfinite(maps[OFFSET]))
    if unusable.all():
        raise EngineInputError(f"{_name(f)}: no pixel has a finite gain and offset")
    bad = maps.get(BAD_PIXELS)
    bad = unusable if bad is None else (bad.astype(bool) | unusable)
    return Calibration(
        gain_kev_per_adu=maps[GAIN].astype(np.float64),
        offset_kev=maps[OFFSET].astype(np.float64),
        bad_pixels=bad if bad.any() else None,
        fwhm_kev=None if FWHM not in maps else maps[FWHM].astype(np.float64),
    )


def read_calibration(path: str | os.PathLike, *, rows: int = 80, cols: int = 80) -> Calibration:
    """Read a per-pixel calibration from any file holding ``/calibration/*``."""
    with open_hdf5(path, what="calibration file") as f:
        cal = _read_calibration_group(f, rows, cols, required=True)
    assert cal is not None
    return cal


def write_calibration(
    path: str | os.PathLike,
    calibration: Calibration,
    *,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write a calibration file atomically (layout in the module docstring)."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(GAIN, data=np.asarray(calibration.gain_kev_per_adu, dtype=np.float64))
        f.create_dataset(OFFSET, data=np.asarray(calibration.offset_kev, dtype=np.float64))
        if calibration.fwhm_kev is not None:
            f.create_dataset(FWHM, data=np.asarray(calibration.fwhm_kev, dtype=np.float64))
        if calibration.bad_pixels is not None:
            f.create_dataset(BAD_PIXELS, data=np.asarray(calibration.bad_pixels, dtype=np.uint8))
        rows, cols = np.shape(calibration.gain_kev_per_adu)
        f.attrs["rows"], f.attrs["cols"] = rows, cols
        write_json_attrs(f, dict(attrs or {}))


# --------------------------------------------------------------------------- event lists


class HexitecEventReader:
    """Open a HEXITEC event list and stream it in blocks of whole frames.

    Use as a context manager. Attributes: ``rows``, ``cols``, ``n_events``, ``is_adu``,
    ``calibration`` (or None), ``frame_rate_hz`` (or None), ``n_frames`` (root attr, or
    None).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f = open_hdf5(self.path, what="HEXITEC event file")
        try:
            self._validate()
        except BaseException:
            self._f.close()
            raise

    def _validate(self) -> None:
        f = self._f
        name = _name(f)
        if not isinstance(f.get("events"), h5py.Group):
            raise EngineInputError(f"{name} has no /events group: not a HEXITEC event list")
        self.rows, self.cols = _detector_shape(f)
        ds = {}
        for key in ("frame", "row", "col"):
            d = f.get(f"events/{key}")
            if not isinstance(d, h5py.Dataset):
                raise EngineInputError(f"{name} has no dataset /events/{key}")
            if d.ndim != 1:
                raise EngineInputError(f"{name}: /events/{key} must be 1-D, has shape {d.shape}")
            if d.dtype.kind not in "ui":
                raise EngineInputError(
                    f"{name}: /events/{key} has dtype {d.dtype}; expected unsigned integers"
                )
            ds[key] = d
        energy, adu = f.get("events/energy_kev"), f.get("events/adu")
        if isinstance(energy, h5py.Dataset):
            if energy.dtype.kind != "f":
                raise EngineInputError(
                    f"{name}: /events/energy_kev has dtype {energy.dtype}; expected float32 keV"
                )
            values, self.is_adu = energy, False
        elif isinstance(adu, h5py.Dataset):
            if adu.dtype.kind not in "ui" or adu.dtype.itemsize > 4:
                raise EngineInputError(
                    f"{name}: /events/adu has dtype {adu.dtype}; expected uint16 ADU"
                )
            values, self.is_adu = adu, True
        else:
            raise EngineInputError(
                f"{name} has neither /events/energy_kev (keV) nor /events/adu (ADU)"
            )
        if values.ndim != 1:
            raise EngineInputError(f"{name}: /events/{values.name} must be 1-D")
        ds["values"] = values
        lengths = {k: len(d) for k, d in ds.items()}
        if len(set(lengths.values())) != 1:
            raise EngineInputError(f"{name}: /events datasets differ in length: {lengths}")
        self._ds = ds
        self.n_events = lengths["frame"]
        self.calibration = _read_calibration_group(f, self.rows, self.cols, required=self.is_adu)
        rate = f.attrs.get("frame_rate_hz")
        self.frame_rate_hz = None if rate is None else float(rate)
        n_frames = f.attrs.get("n_frames")
        self.n_frames = None if n_frames is None else int(n_frames)

    def __enter__(self) -> HexitecEventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _read(self, key: str, start: int, stop: int) -> np.ndarray:
        try:
            return self._ds[key][start:stop]
        except OSError as exc:
            raise EngineInputError(
                f"{self.path.name}: cannot read /events/{key}[{start}:{stop}] (truncated file?):"
                f" {exc}"
            ) from None

    def frame_span(self) -> tuple[int, int] | None:
        """(first, last) frame number, from the first and last events; None if empty."""
        if self.n_events == 0:
            return None
        return int(self._read("frame", 0, 1)[0]), int(
            self._read("frame", self.n_events - 1, None)[0]
        )

    def blocks(
        self, block_events: int = 4_000_000, *, reuse_buffers: bool = False
    ) -> Iterator[EventBlock]:
        """Yield :class:`EventBlock` of about ``block_events`` events, never splitting a frame.

        The last frame of each read is carried over to the next block, so a photon's cluster
        always lies within one block.

        With ``reuse_buffers`` the blocks are views into two alternating buffers that HDF5
        reads into directly (much cheaper than fresh arrays): a block stays valid only until
        the block after the next one is requested, which suits a consumer that prefetches one
        block ahead. Without it every block owns its arrays.
        """
        if block_events < 1:
            raise EngineInputError(f"block size must be positive, got {block_events}")
        keys = ("frame", "row", "col", "values")
        n = self.n_events
        sets = [{}, {}] if reuse_buffers else None
        carry = {key: np.empty(0, self._ds[key].dtype) for key in keys}
        pos = 0
        turn = 0
        while pos < n:
            stop = min(pos + block_events, n)
            n_carry = len(carry["frame"])
            total = n_carry + stop - pos
            if sets is not None:
                buf = sets[turn]
                if not buf or len(buf["frame"]) < total:
                    size = max(total, block_events + 16384)
                    buf.update({key: np.empty(size, self._ds[key].dtype) for key in keys})
                part = {key: buf[key][:total] for key in keys}
            else:
                part = {key: np.empty(total, self._ds[key].dtype) for key in keys}
            for key in keys:
                part[key][:n_carry] = carry[key]
                self._read_into(key, pos, stop, part[key][n_carry:])
            start = pos - n_carry
            pos = stop
            if stop < n:
                cut = _start_of_last_frame(part["frame"])
                # the tail frame (everything, if one frame fills the block) waits for the next
                carry = {key: part[key][cut:].copy() for key in keys}
                if cut == 0:
                    continue
                part = {key: v[:cut] for key, v in part.items()}
            yield EventBlock(part["frame"], part["row"], part["col"], part["values"], start)
            turn = 1 - turn

    def _read_into(self, key: str, start: int, stop: int, out: np.ndarray) -> None:
        if stop <= start:
            return
        try:
            self._ds[key].read_direct(out, np.s_[start:stop], np.s_[0 : stop - start])
        except OSError as exc:
            raise EngineInputError(
                f"{self.path.name}: cannot read /events/{key}[{start}:{stop}] (truncated file?):"
                f" {exc}"
            ) from None


def _start_of_last_frame(frame: np.ndarray) -> int:
    last = frame[-1]
    window = 1024
    while True:
        tail = frame[-window:]
        differ = np.flatnonzero(tail != last)
        if differ.size:
            return len(frame) - len(tail) + int(differ[-1]) + 1
        if window >= len(frame):
            return 0
        window *= 8


def inspect_events(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap validation of a HEXITEC event list for uploads.

    Checks the layout, dtypes, lengths, calibration shape and that the first and last frame
    numbers are in order; reads only metadata and a few values.

    Returns
    -------
    dict
        ``events``, ``rows``, ``cols``, ``values`` ("energy_kev" or "adu"),
        ``first_frame``, ``last_frame``, ``frames`` (attr ``n_frames`` or the frame span),
        ``frame_rate_hz``, ``duration_s``, ``has_calibration``.

    Raises
    ------
    EngineInputError
        Any departure from the layout, naming the dataset or attribute at fault.
    """
    with HexitecEventReader(path) as reader:
        span = reader.frame_span()
        if span is not None and span[1] < span[0]:
            raise EngineInputError(
                f"{reader.path.name}: frame numbers are not monotonic (first {span[0]}, last "
                f"{span[1]}); HEXITEC event lists must be sorted by frame"
            )
        frames = reader.n_frames
        if frames is None:
            frames = 0 if span is None else span[1] - span[0] + 1
        rate = reader.frame_rate_hz
        return {
            "events": reader.n_events,
            "rows": reader.rows,
            "cols": reader.cols,
            "values": "adu" if reader.is_adu else "energy_kev",
            "first_frame": None if span is None else span[0],
            "last_frame": None if span is None else span[1],
            "frames": frames,
            "frame_rate_hz": rate,
            "duration_s": None if not rate else frames / rate,
            "has_calibration": reader.calibration is not None,
        }


def write_hexitec_events(
    path: str | os.PathLike,
    *,
    frame: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    energy_kev: np.ndarray | None = None,
    adu: np.ndarray | None = None,
    calibration: Calibration | None = None,
    rows: int = 80,
    cols: int = 80,
    frame_rate_hz: float = 9000.0,
    n_frames: int | None = None,
    attrs: Mapping[str, Any] | None = None,
    chunk_events: int = 1 << 20,
) -> None:
    """Write a HEXITEC event list atomically (uncompressed, chunked, for fast streaming).

    Give exactly one of ``energy_kev`` (float32 keV) and ``adu`` (uint16, then
    ``calibration`` is required).
    """
    if (energy_kev is None) == (adu is None):
        raise EngineInputError("give exactly one of energy_kev and adu")
    if adu is not None and calibration is None:
        raise EngineInputError("ADU events need a calibration (gain and offset per pixel)")
    n = len(frame)
    chunk = (max(1, min(chunk_events, n)),) if n else None
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group("events")
        frame_dtype = np.uint32 if n == 0 or int(np.max(frame)) < 2**32 else np.uint64
        g.create_dataset("frame", data=np.asarray(frame, dtype=frame_dtype), chunks=chunk)
        g.create_dataset("row", data=np.asarray(row, dtype=np.uint8), chunks=chunk)
        g.create_dataset("col", data=np.asarray(col, dtype=np.uint8), chunks=chunk)
        if energy_kev is not None:
            g.create_dataset("energy_kev", data=np.asarray(energy_kev, np.float32), chunks=chunk)
        else:
            g.create_dataset("adu", data=np.asarray(adu, dtype=np.uint16), chunks=chunk)
        if calibration is not None:
            _write_calibration_group(f, calibration)
        f.attrs["rows"], f.attrs["cols"] = rows, cols
        f.attrs["frame_rate_hz"] = float(frame_rate_hz)
        if n_frames is not None:
            f.attrs["n_frames"] = int(n_frames)
        write_json_attrs(f, dict(attrs or {}))


class HexitecEventsWriter:
    """Append events block by block (sorted by frame) into a new event list; the file
    appears under its name only when the writer closes without error.

    ``values`` are keV (float32) unless ``calibration`` is given, then ADU (uint16).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        calibration: Calibration | None = None,
        rows: int = 80,
        cols: int = 80,
        frame_rate_hz: float = 9000.0,
        chunk_events: int = 1 << 20,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self._atomic = atomic_output(path)
        tmp = self._atomic.__enter__()
        self._f = h5py.File(tmp, "w")
        g = self._f.create_group("events")
        value_name, value_dtype = ("adu", np.uint16) if calibration else ("energy_kev", np.float32)
        spec = {"frame": np.uint32, "row": np.uint8, "col": np.uint8, value_name: value_dtype}
        self._ds = [
            g.create_dataset(k, shape=(0,), maxshape=(None,), dtype=t, chunks=(chunk_events,))
            for k, t in spec.items()
        ]
        if calibration is not None:
            _write_calibration_group(self._f, calibration)
        self._f.attrs["rows"], self._f.attrs["cols"] = rows, cols
        self._f.attrs["frame_rate_hz"] = float(frame_rate_hz)
        write_json_attrs(self._f, dict(attrs or {}))
        self.n_frames: int | None = None

    def append(self, frame: np.ndarray, row: np.ndarray, col: np.ndarray, values: np.ndarray):
        n0 = self._ds[0].shape[0]
        for ds, arr in zip(self._ds, (frame, row, col, values), strict=True):
            ds.resize(n0 + len(arr), axis=0)
            ds[n0:] = np.asarray(arr, dtype=ds.dtype)

    def __enter__(self) -> HexitecEventsWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.n_frames is not None:
            self._f.attrs["n_frames"] = int(self.n_frames)
        self._f.close()
        self._atomic.__exit__(exc_type, exc, tb)


def _write_calibration_group(f: h5py.File, calibration: Calibration) -> None:
    f.create_dataset(GAIN, data=np.asarray(calibration.gain_kev_per_adu, dtype=np.float64))
    f.create_dataset(OFFSET, data=np.asarray(calibration.offset_kev, dtype=np.float64))
    if calibration.bad_pixels is not None:
        f.create_dataset(BAD_PIXELS, data=np.asarray(calibration.bad_pixels, dtype=np.uint8))


# --------------------------------------------------------------------------- raw frames


class HexitecFrameReader:
    """Open a HEXITEC raw-frame file and stream it in blocks of frames (context manager).

    Attributes: ``rows``, ``cols``, ``n_frames``, ``calibration``, ``threshold_kev``,
    ``frame_rate_hz``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f = open_hdf5(self.path, what="HEXITEC raw-frame file")
        try:
            self._validate()
        except BaseException:
            self._f.close()
            raise

    def _validate(self) -> None:
        f = self._f
        name = _name(f)
        ds = f.get("raw_frames")
        if not isinstance(ds, h5py.Dataset):
            raise EngineInputError(f"{name} has no dataset /raw_frames: not HEXITEC raw frames")
        self.rows, self.cols = _detector_shape(f)
        if ds.ndim != 3 or ds.shape[1:] != (self.rows, self.cols):
            raise EngineInputError(
                f"{name}: /raw_frames has shape {ds.shape}; expected (n_frames, {self.rows}, "
                f"{self.cols}) as given by the rows/cols attrs (HEXITEC: 80 x 80)"
            )
        if ds.dtype != np.uint16:
            raise EngineInputError(f"{name}: /raw_frames has dtype {ds.dtype}; expected uint16")
        threshold = f.attrs.get("threshold_kev")
        if threshold is None:
            raise EngineInputError(
                f"{name} has no root attribute threshold_kev (noise threshold in keV)"
            )
        try:
            self.threshold_kev = float(threshold)
        except (TypeError, ValueError):
            raise EngineInputError(f"{name}: threshold_kev {threshold!r} is not a number") from None
        self.calibration = _read_calibration_group(f, self.rows, self.cols, required=True)
        self._ds = ds
        self.n_frames = ds.shape[0]
        rate = f.attrs.get("frame_rate_hz")
        self.frame_rate_hz = None if rate is None else float(rate)

    def __enter__(self) -> HexitecFrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def blocks(self, block_frames: int = 8192) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_frame_index, frames)`` with frames (m, rows, cols) uint16.

        HDF5 reads straight into two alternating buffers: a block stays valid until the
        block after the next one is requested (copy it to keep it longer).
        """
        if block_frames < 1:
            raise EngineInputError(f"block size must be positive, got {block_frames}")
        size = min(block_frames, self.n_frames)
        bufs = [np.empty((size, self.rows, self.cols), np.uint16) for _ in range(2)]
        for i, start in enumerate(range(0, self.n_frames, block_frames)):
            stop = min(start + block_frames, self.n_frames)
            out = bufs[i % 2][: stop - start]
            try:
                self._ds.read_direct(out, np.s_[start:stop], np.s_[0 : stop - start])
            except OSError as exc:
                raise EngineInputError(
                    f"{self.path.name}: cannot read /raw_frames[{start}:{stop}] (truncated "
                    f"file?): {exc}"
                ) from None
            yield start, out


def inspect_frames(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap validation of a HEXITEC raw-frame file for uploads.

    Returns
    -------
    dict
        ``frames``, ``rows``, ``cols``, ``threshold_kev``, ``frame_rate_hz``, ``duration_s``,
        ``chunks``.

    Raises
    ------
    EngineInputError
        Missing dataset or attribute, wrong dtype, frame shape not (rows, cols).
    """
    with HexitecFrameReader(path) as reader:
        rate = reader.frame_rate_hz
        return {
            "frames": reader.n_frames,
            "rows": reader.rows,
            "cols": reader.cols,
            "threshold_kev": reader.threshold_kev,
            "frame_rate_hz": rate,
            "duration_s": None if not rate else reader.n_frames / rate,
            "chunks": list(reader._ds.chunks) if reader._ds.chunks else None,
        }


class HexitecFramesWriter:
    """Write raw frames block by block into ``/raw_frames``; the file appears only on close.

    Examples
    --------
    >>> with HexitecFramesWriter(path, calibration=cal, threshold_kev=5.0) as w:  # doctest: +SKIP
    ...     for block in blocks:
    ...         w.append(block)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        calibration: Calibration,
        threshold_kev: float,
        rows: int = 80,
        cols: int = 80,
        frame_rate_hz: float = 9000.0,
        chunk_frames: int = 256,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self._atomic = atomic_output(path)
        tmp = self._atomic.__enter__()
        self._f = h5py.File(tmp, "w")
        self._ds = self._f.create_dataset(
            "raw_frames",
            shape=(0, rows, cols),
            maxshape=(None, rows, cols),
            dtype=np.uint16,
            chunks=(chunk_frames, rows, cols),
        )
        _write_calibration_group(self._f, calibration)
        self._f.attrs["rows"], self._f.attrs["cols"] = rows, cols
        self._f.attrs["threshold_kev"] = float(threshold_kev)
        self._f.attrs["frame_rate_hz"] = float(frame_rate_hz)
        write_json_attrs(self._f, dict(attrs or {}))

    def append(self, frames_adu: np.ndarray) -> None:
        n0 = self._ds.shape[0]
        self._ds.resize(n0 + len(frames_adu), axis=0)
        self._ds[n0:] = np.asarray(frames_adu, dtype=np.uint16)

    def __enter__(self) -> HexitecFramesWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._f.close()
        self._atomic.__exit__(exc_type, exc, tb)


def write_hexitec_frames(
    path: str | os.PathLike,
    frames_adu: np.ndarray,
    *,
    calibration: Calibration,
    threshold_kev: float,
    frame_rate_hz: float = 9000.0,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write raw frames (n, rows, cols) uint16 with calibration and threshold, atomically."""
    frames_adu = np.asarray(frames_adu)
    if frames_adu.ndim != 3:
        raise EngineInputError(f"raw frames must be (n, rows, cols), got {frames_adu.shape}")
    with HexitecFramesWriter(
        path,
        calibration=calibration,
        threshold_kev=threshold_kev,
        rows=frames_adu.shape[1],
        cols=frames_adu.shape[2],
        frame_rate_hz=frame_rate_hz,
        attrs=attrs,
    ) as w:
        w.append(frames_adu)
