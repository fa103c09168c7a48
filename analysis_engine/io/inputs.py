"""Input-format dispatch for the commands: which reader opens a file, decided by its content.

The stage commands call these instead of choosing a reader themselves, so a new format is
added here (and in :mod:`analysis_engine.io.sniff`) without touching the science.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5
from analysis_engine.io.hexitec import HexitecFrameReader
from analysis_engine.io.hexitec_native import (
    HXT_MAGIC,
    BinFrameReader,
    read_hxt,
    read_pixel_calibration,
)
from analysis_engine.io.sniff import HDF5_SIGNATURE

__all__ = ["hexitec_input_kind", "open_frame_reader", "read_any_spectra", "spectra_format"]


def _head(path: str | os.PathLike, n: int = 8) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise EngineInputError(f"input not found: {p}")
    with open(p, "rb") as fh:
        return fh.read(n)


def hexitec_input_kind(path: str | os.PathLike) -> str:
    """``"events"`` (HDF5 event list), ``"frames"`` (HDF5 ``/raw_frames``) or ``"bin"``.

    Anything that is not HDF5 is taken as a raw ``.bin`` stream (it has no header to check);
    :class:`~analysis_engine.io.hexitec_native.BinFrameReader` then validates its size.
    """
    head = _head(path)
    if head.startswith(HXT_MAGIC):
        raise EngineInputError(
            f"{Path(path).name} is an .hxt spectrum file, not frames or events: give it to "
            "`compton` directly"
        )
    if not head.startswith(HDF5_SIGNATURE):
        return "bin"
    with open_hdf5(path, what="HEXITEC file") as f:
        if "events" in f:
            return "events"
        if "raw_frames" in f:
            return "frames"
        raise EngineInputError(
            f"{Path(path).name} is neither a HEXITEC event list (/events) nor raw frames "
            f"(/raw_frames); found {sorted(f.keys())[:8]}"
        )


def open_frame_reader(
    path: str | os.PathLike,
    *,
    gradients_path: str | os.PathLike | None = None,
    intercepts_path: str | os.PathLike | None = None,
    thresholds_path: str | os.PathLike | None = None,
) -> HexitecFrameReader | BinFrameReader:
    """Open raw frames: an HDF5 ``/raw_frames`` file or a ``.bin`` stream with its arrays.

    A ``.bin`` file needs ``gradients_path`` and ``intercepts_path`` (80 x 80 maps);
    ``thresholds_path`` is optional (ADU per pixel).
    """
    kind = hexitec_input_kind(path)
    if kind == "frames":
        return HexitecFrameReader(path)
    if kind != "bin":
        raise EngineInputError(f"{Path(path).name} holds events, not raw frames")
    if gradients_path is None or intercepts_path is None:
        raise EngineInputError(
            f"{Path(path).name} is a raw HEXITEC .bin stream: give its per-pixel calibration "
            "with --gradients G and --intercepts I (80 x 80, .npy or text)"
        )
    cal = read_pixel_calibration(gradients_path, intercepts_path, thresholds_path)
    return BinFrameReader(path, cal)


def spectra_format(path: str | os.PathLike) -> str:
    """``"hxt"`` or ``"hdf5"``, by the file's first bytes."""
    head = _head(path)
    if head.startswith(HXT_MAGIC):
        return "hxt"
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    raise EngineInputError(
        f"{Path(path).name} is neither an .hxt v3 file (HEXITECH) nor HDF5 spectra "
        "(/energy_bins, /pixel_histograms)"
    )


def _reject_negative_counts(path: str | os.PathLike) -> None:
    """Signed counts would wrap when cast to uint32: refuse negative ones first."""
    with open_hdf5(path, what="spectra file") as f:
        cube = f.get("pixel_histograms")
        if cube is None or cube.dtype.kind != "i":
            return
        for row in range(cube.shape[0]):
            if np.min(cube[row]) < 0:
                raise EngineInputError(
                    "spectra contain negative counts in /pixel_histograms; expected counts "
                    "per bin >= 0"
                )


def read_any_spectra(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per-pixel spectra from CorreLi HDF5 or HEXITEC ``.hxt`` v3.

    Returns the same triple as :func:`analysis_engine.io.spectra.read_spectra`; ``.hxt``
    counts must be whole numbers (they are histogram counts) and become uint32.
    """
    from analysis_engine.io.spectra import read_spectra

    if spectra_format(path) == "hdf5":
        _reject_negative_counts(path)
        return read_spectra(path)
    energy, counts, header = read_hxt(path)
    if np.any(counts != np.round(counts)) or (counts.size and counts.max() >= 2**32):
        raise EngineInputError(
            f"{Path(path).name}: .hxt counts are not whole numbers below 2^32; CorreLi expects "
            "histogram counts"
        )
    attrs: dict[str, Any] = {
        "source_format": "hxt",
        "hxt_prefix": header.prefix,
        "hxt_timestamp": header.timestamp,
        "motor_positions": header.motor_positions,
    }
    return energy, counts.astype(np.uint32), attrs
