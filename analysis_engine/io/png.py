"""PNG bytes from an RGBA array (thumbnails served by the platform), no imaging library needed:
8-bit RGBA, filter type 0 on every row, one zlib stream (PNG specification, ISO/IEC 15948)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = ["encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(rgba: np.ndarray, *, level: int = 6) -> bytes:
    """Encode ``rgba`` (rows, cols, 4) uint8 as a PNG file's bytes.

    Raises
    ------
    EngineInputError
        Not a (rows, cols, 4) uint8 array.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8 or 0 in rgba.shape:
        raise EngineInputError(
            f"expected a (rows, cols, 4) uint8 image, got {rgba.shape} {rgba.dtype}"
        )
    h, w, _ = rgba.shape
    rows = np.zeros((h, 1 + 4 * w), dtype=np.uint8)  # leading 0: filter type "None"
    rows[:, 1:] = rgba.reshape(h, 4 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit, colour type 6 (RGBA)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )
