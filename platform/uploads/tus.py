"""tus 1.0.0 protocol details (https://tus.io/protocols/resumable-upload): headers, the
``Upload-Metadata`` encoding, and an error type that carries its HTTP status."""

from __future__ import annotations

import base64
import binascii

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
DATASET_ID_HEADER = "CorreLi-Dataset-Id"
DATASET_STATUS_HEADER = "CorreLi-Dataset-Status"
# Every tus header a browser script must be allowed to read from a response.
EXPOSED_HEADERS = (
    "Location, Upload-Offset, Upload-Length, Upload-Metadata, Tus-Resumable, Tus-Version, "
    f"Tus-Extension, Tus-Max-Size, {DATASET_ID_HEADER}, {DATASET_STATUS_HEADER}"
)


class TusError(Exception):
    """A request the tus server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_metadata(header: str | None) -> dict[str, str]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (value optional).

    Raises
    ------
    TusError
        400 when a value is not base64 of UTF-8 text or a key repeats.
    """
    result: dict[str, str] = {}
    if not header or not header.strip():
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise TusError(400, f"Upload-Metadata entry {pair.strip()!r} is not 'key base64value'")
        key = parts[0]
        if key in result:
            raise TusError(400, f"Upload-Metadata key {key!r} appears twice")
        try:
            value = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(
                400, f"Upload-Metadata value of {key!r} is not base64-encoded UTF-8 text"
            ) from None
        if "\x00" in key or "\x00" in value:
            raise TusError(400, f"Upload-Metadata value of {key!r} contains a NUL character")
        result[key] = value
    return result


def encode_metadata(metadata: dict[str, str]) -> str:
    """The ``Upload-Metadata`` header value for ``metadata`` (inverse of parse_metadata)."""
    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}" if value != "" else key
        for key, value in metadata.items()
    )


# The largest value a 64-bit signed database column (BigIntegerField, BigAutoField) holds.
MAX_INT64 = 2**63 - 1


def is_ascii_digits(value: str) -> bool:
    """True for ``0``-``9`` only: ``str.isdigit`` also accepts ``²`` and other digits."""
    return value != "" and value.isascii() and value.isdigit()


def parse_non_negative_int(value: str | None, header: str) -> int:
    """A header that must be a non-negative integer (``Upload-Length``, ``Upload-Offset``)."""
    if value is None or value == "":
        raise TusError(400, f"{header} header is required")
    if not is_ascii_digits(value) or int(value) > MAX_INT64:
        raise TusError(400, f"{header} must be a non-negative integer, not {value!r}")
    return int(value)
