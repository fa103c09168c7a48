"""HEXITEC files as the detector and its software write them: raw ``.bin`` frames, ``.hxt``
spectra and per-pixel calibration arrays (full layouts in ``docs/formats.md``).

- ``.bin``: a headerless stream of little-endian uint16 frames of 80 x 80 = 6400 ADU values.
  Within a frame the values run row by row; inside each row of 80 values the readout
  interleaves four blocks of 20 columns, so value ``k`` of a row belongs to column
  ``20 * (k % 4) + k // 4`` (the order of STFC's published ``read80x80Frame``). A file whose
  size is not a whole number of frames has its trailing partial frame reported
  (``trailing_bytes``) and ignored.
- ``.hxt`` version 3: ``HEXITECH``, uint64 version, nine uint32 motor positions, int32 prefix
  length, a 100-byte prefix field, a 16-byte timestamp, uint32 rows, cols, bins, float64 bin
  energies (keV), then float64 counts in C order (row, col, bin): the bin runs fastest, then
  the column, then the row (the byte position used by libhxt and by the HEXITEC software's
  own writer, ``pixel * n_bins + bin`` with ``pixel = row * cols + col``).
- calibration arrays: 80 x 80 gradient (keV/ADU), intercept (keV) and threshold (ADU) maps,
  ``.npy`` or whitespace-separated text, indexed [row, col]; ``energy = gradient * ADU +
  intercept``. Non-finite entries mark a bad pixel (masked, reported, not an error).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output
from analysis_engine.io.hexitec import Calibration

__all__ = [
    "BIN_COLUMN_OF_VALUE",
    "BinFrameReader",
    "FRAME_BYTES",
    "HXT_MAGIC",
    "HxtHeader",
    "PixelCalibration",
    "descramble_frames",
    "inspect_bin",
    "inspect_hxt",
    "read_calibration_array",
    "read_hxt",
    "read_hxt_header",
    "read_pixel_calibration",
    "scramble_frames",
    "write_calibration_arrays",
    "write_hxt",
]

ROWS = COLS = 80
FRAME_VALUES = ROWS * COLS
FRAME_BYTES = 2 * FRAME_VALUES
#: column of value ``k`` within a row of a ``.bin`` frame
BIN_COLUMN_OF_VALUE = 20 * (np.arange(COLS) % 4) + np.arange(COLS) // 4
#: position ``k`` within a row of the value of column ``c``: inverse of the above
_VALUE_OF_COLUMN = np.argsort(BIN_COLUMN_OF_VALUE)
#: the largest ADU the 14-bit HEXITEC ADC produces; anything above cannot be a raw frame
ADC_MAX = 16383

HXT_MAGIC = b"HEXITECH"
HXT_VERSION = 3
_HXT_FIXED = struct.Struct("<8sQ9Ii")  # magic, version, 9 motors, prefix length
_HXT_PREFIX_FIELD = 100
_HXT_TIMESTAMP = 16
_HXT_DIMS = struct.Struct("<3I")
MOTOR_NAMES = ("mss_x", "mss_y", "mss_z", "mss_rot", "gal_x", "gal_y", "gal_z", "gal_rot",
               "gal_rot2")  # fmt: skip


# --------------------------------------------------------------------------- .bin frames


def descramble_frames(raw: np.ndarray) -> np.ndarray:
    """Put ``.bin`` readout order into detector order.

    Parameters
    ----------
    raw : ndarray, shape (n, 6400) or (n, 80, 80)
        Values as stored in the file, frame by frame.

    Returns
    -------
    ndarray, shape (n, 80, 80)
        Indexed [frame, row, col].
    """
    raw = np.asarray(raw).reshape(-1, ROWS, COLS)
    return raw[:, :, _VALUE_OF_COLUMN]


def _descramble_into(raw: np.ndarray, out: np.ndarray) -> None:
    # value 4 * j + b of a row is column 20 * b + j: a (20, 4) -> (4, 20) transpose per row,
    # a strided copy instead of a gather
    m = out.shape[0]
    np.copyto(out.reshape(m, ROWS, 4, 20), raw.reshape(m, ROWS, 20, 4).transpose(0, 1, 3, 2))


def scramble_frames(frames: np.ndarray) -> np.ndarray:
    """Inverse of :func:`descramble_frames`: (n, 80, 80) [frame, row, col] -> file order."""
    frames = np.asarray(frames).reshape(-1, ROWS, COLS)
    return frames[:, :, BIN_COLUMN_OF_VALUE]


@dataclass(frozen=True)
class PixelCalibration:
    """Per-pixel calibration arrays as HEXITEC groups produce them, (80, 80) each.

    ``bad_pixels`` is True where any given map is non-finite (or a threshold is negative).
    """

    gradient_kev_per_adu: np.ndarray
    intercept_kev: np.ndarray
    threshold_adu: np.ndarray | None
    bad_pixels: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)

    def as_calibration(self) -> Calibration:
        """The engine's :class:`~analysis_engine.io.hexitec.Calibration` (bad pixels NaN)."""
        bad = self.bad_pixels
        gain = np.where(bad, np.nan, self.gradient_kev_per_adu)
        offset = np.where(bad, np.nan, self.intercept_kev)
        return Calibration(gain, offset, bad_pixels=bad if bad.any() else None)

    def threshold_for_engine(self) -> np.ndarray | None:
        """Thresholds in ADU with bad pixels set to 0 (they are masked anyway)."""
        if self.threshold_adu is None:
            return None
        return np.where(self.bad_pixels, 0, np.ceil(self.threshold_adu)).astype(np.int64)


def read_calibration_array(
    path: str | os.PathLike, *, what: str = "calibration array", shape: tuple[int, int] = (80, 80)
) -> np.ndarray:
    """Read one per-pixel map from ``.npy`` or whitespace-separated text, as float64.

    Raises
    ------
    EngineInputError
        Missing or unreadable file, non-numeric text, or a shape other than ``shape``.
    """
    p = Path(path)
    if not p.is_file():
        raise EngineInputError(f"{what} not found: {p}")
    with open(p, "rb") as fh:
        head = fh.read(6)
    try:
        if head == b"\x93NUMPY":
            arr = np.load(p, allow_pickle=False)
        else:
            arr = np.loadtxt(p, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        raise EngineInputError(
            f"{what} {p.name} is neither a .npy array nor whitespace-separated numbers: {exc}"
        ) from None
    if arr.dtype.kind not in "fiub":
        raise EngineInputError(f"{what} {p.name} has non-numeric dtype {arr.dtype}")
    if arr.shape != shape:
        raise EngineInputError(
            f"{what} {p.name} has shape {arr.shape}; expected {shape}, one value per detector "
            "pixel indexed [row, col]"
        )
    return arr.astype(np.float64)


def read_pixel_calibration(
    gradients: str | os.PathLike,
    intercepts: str | os.PathLike,
    thresholds: str | os.PathLike | None = None,
) -> PixelCalibration:
    """Read gradient (keV/ADU), intercept (keV) and optional threshold (ADU) maps.

    Non-finite entries, a zero gradient or a negative threshold mark the pixel bad.

    Raises
    ------
    EngineInputError
        A map of the wrong shape or unreadable, or no usable pixel at all.
    """
    gradient = read_calibration_array(gradients, what="gradient map")
    intercept = read_calibration_array(intercepts, what="intercept map")
    threshold = None if thresholds is None else read_calibration_array(
        thresholds, what="threshold map"
    )  # fmt: skip
    bad = ~np.isfinite(gradient) | ~np.isfinite(intercept) | (gradient == 0)
    if threshold is not None:
        bad |= ~np.isfinite(threshold) | (np.nan_to_num(threshold, nan=0.0) < 0)
    if bad.all():
        raise EngineInputError(
            f"calibration {Path(gradients).name}/{Path(intercepts).name}: no pixel has a finite, "
            "non-zero gradient and a finite intercept"
        )
    sources = {"gradients": Path(gradients).name, "intercepts": Path(intercepts).name}
    if thresholds is not None:
        sources["thresholds"] = Path(thresholds).name
    return PixelCalibration(gradient, intercept, threshold, bad, sources)


def write_calibration_arrays(
    directory: str | os.PathLike,
    gradient_kev_per_adu: np.ndarray,
    intercept_kev: np.ndarray,
    threshold_adu: np.ndarray | None = None,
    *,
    text: bool = True,
) -> dict[str, Path]:
    """Write the maps as ``gradients``, ``intercepts``, ``thresholds`` (``.txt`` or ``.npy``)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    maps = {"gradients": gradient_kev_per_adu, "intercepts": intercept_kev}
    if threshold_adu is not None:
        maps["thresholds"] = threshold_adu
    written = {}
    for name, arr in maps.items():
        target = out / f"{name}.{'txt' if text else 'npy'}"
        with atomic_output(target) as tmp:
            if text:
                np.savetxt(tmp, np.asarray(arr, dtype=np.float64), fmt="%.10g")
            else:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(arr, dtype=np.float64))
        written[name] = target
    return written


class BinFrameReader:
    """Stream a HEXITEC ``.bin`` file in blocks of whole frames (context manager).

    Same interface as :class:`~analysis_engine.io.hexitec.HexitecFrameReader`: attributes
    ``rows``, ``cols``, ``n_frames``, ``calibration``, ``threshold_kev`` (None),
    ``threshold_adu`` ((80, 80) or None), ``frame_rate_hz`` (None), ``trailing_bytes``.
    """

    def __init__(
        self, path: str | os.PathLike, calibration: PixelCalibration | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EngineInputError(f"HEXITEC .bin file not found: {self.path}")
        size = self.path.stat().st_size
        self.rows, self.cols = ROWS, COLS
        self.n_frames, self.trailing_bytes = divmod(size, FRAME_BYTES)
        if self.n_frames == 0:
            raise EngineInputError(
                f"{self.path.name} holds {size} bytes, less than one HEXITEC frame "
                f"({FRAME_BYTES} bytes = 80 x 80 uint16)"
            )
        self.pixel_calibration = calibration
        self.calibration = None if calibration is None else calibration.as_calibration()
        self.threshold_adu = None if calibration is None else calibration.threshold_for_engine()
        self.threshold_kev = None
        self.frame_rate_hz = None
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()

    def __enter__(self) -> BinFrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    def blocks(self, block_frames: int = 8192) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_frame_index, frames)``, frames (m, 80, 80) uint16 [frame, row, col].

        Reads straight into two alternating buffers: a block stays valid until the block
        after the next one is requested.
        """
        if block_frames < 1:
            raise EngineInputError(f"block size must be positive, got {block_frames}")
        size = min(block_frames, self.n_frames)
        raw = [np.empty((size, FRAME_VALUES), "<u2") for _ in range(2)]
        out = [np.empty((size, ROWS, COLS), np.uint16) for _ in range(2)]
        self._fh.seek(0)
        for i, start in enumerate(range(0, self.n_frames, block_frames)):
            stop = min(start + block_frames, self.n_frames)
            buf = raw[i % 2][: stop - start]
            got = self._fh.readinto(memoryview(buf).cast("B"))
            if got != buf.nbytes:
                raise EngineInputError(
                    f"{self.path.name}: file shrank while reading frames {start}:{stop}"
                )
            block = out[i % 2][: stop - start]
            _descramble_into(buf, block)
            yield start, block


def inspect_bin(path: str | os.PathLike, *, sample_frames: int = 64) -> dict[str, Any]:
    """Cheap validation of a ``.bin`` file: frame count, trailing bytes, ADU range sampled.

    Raises
    ------
    EngineInputError
        Less than one frame, or sampled values above the 14-bit ADC range (not HEXITEC raw
        frames).
    """
    with BinFrameReader(path) as reader:
        n = min(sample_frames, reader.n_frames)
        _, frames = next(reader.blocks(n))
        peak = int(frames.max())
        if peak > ADC_MAX:
            raise EngineInputError(
                f"{reader.path.name}: value {peak} exceeds the 14-bit HEXITEC ADC range "
                f"(0..{ADC_MAX}); not raw HEXITEC frames"
            )
        hit = frames > 0
        return {
            "frames": reader.n_frames,
            "rows": ROWS,
            "cols": COLS,
            "trailing_bytes": reader.trailing_bytes,
            "sampled_frames": n,
            "sampled_max_adu": peak,
            "sampled_hit_fraction": float(hit.mean()),
        }


# --------------------------------------------------------------------------- .hxt spectra


@dataclass(frozen=True)
class HxtHeader:
    """Header of an ``.hxt`` file; ``data_offset`` is the byte where the counts start."""

    version: int
    motor_positions: dict[str, int]
    prefix: str
    timestamp: str
    rows: int
    cols: int
    n_bins: int
    energy_bins_kev: np.ndarray
    data_offset: int


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def read_hxt_header(path: str | os.PathLike) -> HxtHeader:
    """Read and check an ``.hxt`` v3 header; the counts must be all there.

    Raises
    ------
    EngineInputError
        Wrong magic or version, impossible dimensions, bin energies not increasing, or a file
        shorter than its header says (truncated counts).
    """
    p = Path(path)
    if not p.is_file():
        raise EngineInputError(f".hxt file not found: {p}")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        fixed = fh.read(_HXT_FIXED.size)
        if len(fixed) < _HXT_FIXED.size or not fixed.startswith(HXT_MAGIC):
            raise EngineInputError(f"{p.name} is not an .hxt file (no HEXITECH signature)")
        magic, version, *rest = _HXT_FIXED.unpack(fixed)
        motors, prefix_length = rest[:9], rest[9]
        if version != HXT_VERSION:
            raise EngineInputError(
                f"{p.name} is .hxt version {version}; CorreLi reads version {HXT_VERSION} "
                "(re-export it from the HEXITEC software as v3)"
            )
        if not 0 <= prefix_length <= _HXT_PREFIX_FIELD:
            raise EngineInputError(
                f"{p.name}: prefix length {prefix_length} outside 0..{_HXT_PREFIX_FIELD}"
            )
        prefix = fh.read(_HXT_PREFIX_FIELD)
        timestamp = fh.read(_HXT_TIMESTAMP)
        dims = fh.read(_HXT_DIMS.size)
        if len(dims) < _HXT_DIMS.size:
            raise EngineInputError(f"{p.name}: .hxt header is truncated")
        rows, cols, n_bins = _HXT_DIMS.unpack(dims)
        if not (0 < rows <= 4096 and 0 < cols <= 4096 and 0 < n_bins <= 1_000_000):
            raise EngineInputError(
                f"{p.name}: .hxt header gives rows={rows}, cols={cols}, bins={n_bins}; "
                "not a plausible spectrum cube"
            )
        raw_bins = fh.read(8 * n_bins)
        if len(raw_bins) < 8 * n_bins:
            raise EngineInputError(f"{p.name}: .hxt bin energies are truncated")
        data_offset = fh.tell()
    energies = np.frombuffer(raw_bins, "<f8").astype(np.float64)
    if not np.all(np.isfinite(energies)) or (n_bins > 1 and not np.all(np.diff(energies) > 0)):
        raise EngineInputError(f"{p.name}: .hxt bin energies are not finite and increasing")
    expected = data_offset + 8 * rows * cols * n_bins
    if size < expected:
        raise EngineInputError(
            f"{p.name}: truncated .hxt: the header announces {rows} x {cols} pixels x {n_bins} "
            f"bins = {expected} bytes, the file has {size}"
        )
    if size > expected:
        raise EngineInputError(
            f"{p.name}: .hxt is {size - expected} bytes longer than its header announces "
            f"({rows} x {cols} x {n_bins}); not a v3 file or a wrong dimension"
        )
    return HxtHeader(
        version=int(version),
        motor_positions=dict(zip(MOTOR_NAMES, (int(m) for m in motors), strict=True)),
        prefix=_text(prefix[: max(prefix_length, 0)] if prefix_length else prefix),
        timestamp=_text(timestamp),
        rows=int(rows),
        cols=int(cols),
        n_bins=int(n_bins),
        energy_bins_kev=energies,
        data_offset=int(data_offset),
    )


def read_hxt(
    path: str | os.PathLike, *, block_rows: int = 8
) -> tuple[np.ndarray, np.ndarray, HxtHeader]:
    """Read an ``.hxt`` v3 spectrum cube.

    Returns
    -------
    energy_bins_kev : ndarray, shape (n_bins,)
    counts : ndarray, shape (rows, cols, n_bins), float64
        Indexed [row, col, bin] like CorreLi's ``/pixel_histograms``.
    header : HxtHeader

    Raises
    ------
    EngineInputError
        See :func:`read_hxt_header`; also negative or non-finite counts.
    """
    header = read_hxt_header(path)
    rows, cols, n_bins = header.rows, header.cols, header.n_bins
    counts = np.empty((rows, cols, n_bins), dtype="<f8")
    with open(path, "rb") as fh:
        fh.seek(header.data_offset)
        for r in range(0, rows, block_rows):
            stop = min(rows, r + block_rows)
            view = counts[r:stop]
            fh.readinto(memoryview(view).cast("B"))
    if not np.all(np.isfinite(counts)) or (counts.size and counts.min() < 0):
        raise EngineInputError(f"{Path(path).name}: .hxt counts contain NaN or negative values")
    return header.energy_bins_kev, counts, header


def inspect_hxt(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap validation of an ``.hxt`` file (header and size only)."""
    h = read_hxt_header(path)
    e = h.energy_bins_kev
    return {
        "version": h.version,
        "rows": h.rows,
        "cols": h.cols,
        "n_bins": h.n_bins,
        "energy_min_kev": float(e[0]),
        "energy_max_kev": float(e[-1]),
        "bin_width_kev": float(e[1] - e[0]) if h.n_bins > 1 else None,
        "prefix": h.prefix,
        "timestamp": h.timestamp,
    }


def write_hxt(
    path: str | os.PathLike,
    energy_bins_kev: np.ndarray,
    counts: np.ndarray,
    *,
    prefix: str = "CorreLi",
    timestamp: str = "",
    motor_positions: Sequence[int] = (0,) * 9,
) -> None:
    """Write a spectrum cube as ``.hxt`` v3 (atomically), readable by the HEXITEC software.

    Parameters
    ----------
    energy_bins_kev : ndarray, shape (n_bins,)
        Bin energies, increasing.
    counts : ndarray, shape (rows, cols, n_bins)
        Indexed [row, col, bin]; stored as float64.
    prefix, timestamp
        Free text, truncated to 100 and 16 bytes.
    motor_positions
        Nine unsigned integers (MSS x, y, z, rot; galvo x, y, z, rot, rot2).
    """
    bins = np.asarray(energy_bins_kev, dtype="<f8")
    cube = np.asarray(counts)
    if cube.ndim != 3 or cube.shape[2] != bins.shape[0]:
        raise EngineInputError(
            f"counts shape {cube.shape} does not match {bins.shape[0]} energy bins"
        )
    if len(motor_positions) != 9:
        raise EngineInputError("an .hxt header holds exactly nine motor positions")
    prefix_bytes = prefix.encode("latin-1", "replace")[:_HXT_PREFIX_FIELD]
    stamp = timestamp.encode("latin-1", "replace")[:_HXT_TIMESTAMP]
    rows, cols, n_bins = cube.shape
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(_HXT_FIXED.pack(HXT_MAGIC, HXT_VERSION, *(int(m) for m in motor_positions),
                                 len(prefix_bytes)))  # fmt: skip
        fh.write(prefix_bytes.ljust(_HXT_PREFIX_FIELD, b"\x00"))
        fh.write(stamp.ljust(_HXT_TIMESTAMP, b"\x00"))
        fh.write(_HXT_DIMS.pack(rows, cols, n_bins))
        fh.write(bins.tobytes())
        for r in range(rows):
            fh.write(np.ascontiguousarray(cube[r], dtype="<f8").tobytes())
