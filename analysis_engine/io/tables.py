"""Cycling and EIS tables: CSV reading, validation and writing.

Both are plain CSV files (comma, semicolon or tab separated) with ONE header row. Lines that
start with ``#`` before the header are metadata (``# key: value``) and are kept. Column names
are matched case-insensitively, ignoring spaces, brackets and punctuation, so ``Frequency (Hz)``
is ``frequency_hz``.

Cycling (galvanostatic cycling, one row per cycle):

=============================  ========  ========================================
column                         unit      required
=============================  ========  ========================================
``cycle``                      count     yes, integers >= 1
``charge_capacity_mah_g``      mAh/g     yes
``discharge_capacity_mah_g``   mAh/g     yes
``c_rate``                     C         no
``coulombic_efficiency_pct``   %         no (computed as discharge / charge)
``overpotential_v``            V         no
=============================  ========  ========================================

EIS (impedance spectrum, one row per frequency):

=============================  ========  ========================================
column                         unit      required
=============================  ========  ========================================
``frequency_hz``               Hz        yes, > 0
``z_real_ohm``                 ohm       yes
``z_imag_ohm``                 ohm       yes, as measured (negative = capacitive)
=============================  ========  ========================================
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "CYCLING_COLUMNS",
    "EIS_COLUMNS",
    "Table",
    "read_table",
    "read_cycling",
    "read_eis",
    "write_table",
    "inspect_table",
]

#: Required and optional columns (canonical names) of each table kind.
CYCLING_COLUMNS = {
    "required": ("cycle", "charge_capacity_mah_g", "discharge_capacity_mah_g"),
    "optional": ("c_rate", "coulombic_efficiency_pct", "overpotential_v"),
}
EIS_COLUMNS = {
    "required": ("frequency_hz", "z_real_ohm", "z_imag_ohm"),
    "optional": (),
}
_KINDS = {"cycling": CYCLING_COLUMNS, "eis": EIS_COLUMNS}

# Common spellings of the same quantities (normalised form -> canonical name).
_ALIASES = {
    "freq_hz": "frequency_hz",
    "frequency": "frequency_hz",
    "f_hz": "frequency_hz",
    "zreal_ohm": "z_real_ohm",
    "z_re_ohm": "z_real_ohm",
    "re_z_ohm": "z_real_ohm",
    "zimag_ohm": "z_imag_ohm",
    "z_im_ohm": "z_imag_ohm",
    "im_z_ohm": "z_imag_ohm",
    "cycle_number": "cycle",
    "cycle_index": "cycle",
    "ce_pct": "coulombic_efficiency_pct",
}
_MAX_ROWS = 10_000_000


@dataclass(frozen=True)
class Table:
    """A validated table: ``kind`` (``"cycling"`` or ``"eis"``), columns as float64 arrays
    keyed by canonical name (all the same length), and the ``# key: value`` metadata."""

    kind: str
    columns: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def _normalise(name: str) -> str:
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return _ALIASES.get(text, text)


def _split_text(text: str, name: str) -> tuple[list[str], list[list[str]], dict[str, str], int]:
    """Header, data rows, metadata and the 1-based line number of the header."""
    lines = text.splitlines()
    metadata: dict[str, str] = {}
    start = 0
    while start < len(lines) and (
        not lines[start].strip() or lines[start].lstrip().startswith("#")
    ):
        body = lines[start].lstrip().lstrip("#").strip()
        if ":" in body:
            key, value = body.split(":", 1)
            metadata[key.strip()] = value.strip()
        start += 1
    if start >= len(lines):
        raise EngineInputError(f"{name} has no header row and no data (only comments or blank)")
    header_line = lines[start]
    delimiter = (
        "\t"
        if "\t" in header_line
        else ";"
        if ";" in header_line and "," not in header_line
        else ","
    )
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=delimiter)
    rows = [r for r in reader if r and any(cell.strip() for cell in r)]
    return [h.strip() for h in rows[0]], rows[1:], metadata, start + 1


def _detect_kind(names: Sequence[str], expected_kind: str | None, name: str) -> str | None:
    present = set(names)
    if expected_kind in _KINDS:
        return expected_kind
    for kind, spec in _KINDS.items():
        if set(spec["required"]) <= present:
            return kind
    # Which kind does it half-resemble? Name the missing columns of the closest one.
    best = max(_KINDS, key=lambda k: len(present & set(_KINDS[k]["required"])))
    if present & set(_KINDS[best]["required"]):
        missing = [c for c in _KINDS[best]["required"] if c not in present]
        raise EngineInputError(
            f"{name} looks like a {best} table but lacks the column(s) {', '.join(missing)}; "
            f"a {best} CSV needs {', '.join(_KINDS[best]['required'])}"
        )
    return None


def _parse(text: str, name: str, expected_kind: str | None) -> Table | None:
    header, rows, metadata, header_line = _split_text(text, name)
    names = [_normalise(h) for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EngineInputError(f"{name}: column(s) {', '.join(dupes)} appear more than once")
    kind = _detect_kind(names, expected_kind, name)
    if kind is None:
        return None
    spec = _KINDS[kind]
    missing = [c for c in spec["required"] if c not in names]
    if missing:
        raise EngineInputError(
            f"{name} is declared as {kind} but lacks the column(s) {', '.join(missing)}; "
            f"found {', '.join(header)}; a {kind} CSV needs {', '.join(spec['required'])}"
        )
    if not rows:
        raise EngineInputError(f"{name} has a header but no data rows")
    if len(rows) > _MAX_ROWS:
        raise EngineInputError(f"{name} has more than {_MAX_ROWS} rows")
    wanted = [c for c in (*spec["required"], *spec["optional"]) if c in names]
    index = {c: names.index(c) for c in wanted}
    columns: dict[str, np.ndarray] = {}
    for col in wanted:
        values = np.empty(len(rows))
        for i, row in enumerate(rows):
            line = header_line + 1 + i
            cell = row[index[col]].strip() if index[col] < len(row) else ""
            if not cell:
                raise EngineInputError(f"{name} line {line}: column {col} is empty")
            try:
                values[i] = float(cell)
            except ValueError:
                raise EngineInputError(
                    f"{name} line {line}: column {col} holds {cell!r}, not a number"
                ) from None
            if not np.isfinite(values[i]):
                raise EngineInputError(
                    f"{name} line {line}: column {col} is {cell} (NaN or infinite values are "
                    "not allowed; leave the row out instead)"
                )
        columns[col] = values
    _check_values(kind, columns, name)
    return Table(kind=kind, columns=columns, metadata=metadata)


def _check_values(kind: str, columns: Mapping[str, np.ndarray], name: str) -> None:
    if kind == "cycling":
        cycle = columns["cycle"]
        if np.any(cycle < 1) or np.any(cycle != np.round(cycle)):
            raise EngineInputError(f"{name}: column cycle must hold whole numbers >= 1")
        for col in ("charge_capacity_mah_g", "discharge_capacity_mah_g"):
            if np.any(columns[col] < 0):
                raise EngineInputError(f"{name}: column {col} has negative capacities")
    else:
        if np.any(columns["frequency_hz"] <= 0):
            raise EngineInputError(f"{name}: column frequency_hz must be > 0 Hz in every row")


def _read_text(path: str | os.PathLike) -> tuple[str, str]:
    p = Path(path)
    if not p.exists():
        raise EngineInputError(f"table not found: {p}")
    raw = p.read_bytes()
    if not raw.strip():
        raise EngineInputError(f"{p.name} is empty")
    try:
        return raw.decode("utf-8-sig"), p.name
    except UnicodeDecodeError:
        raise EngineInputError(f"{p.name} is not UTF-8 text") from None


def read_table(path: str | os.PathLike, *, expected_kind: str | None = None) -> Table:
    """Read and validate a cycling or EIS CSV.

    Parameters
    ----------
    path
        The CSV file.
    expected_kind : {"cycling", "eis"}, optional
        Insist on this kind (the missing columns are named); default: detect from the header.

    Returns
    -------
    Table

    Raises
    ------
    EngineInputError
        Empty file, no header, missing required columns, non-numeric, empty, NaN or
        out-of-range values (with the line number), or a header matching neither kind.
    """
    if expected_kind not in (None, "cycling", "eis"):
        raise EngineInputError(f"expected_kind must be 'cycling' or 'eis', got {expected_kind!r}")
    text, name = _read_text(path)
    table = _parse(text, name, expected_kind)
    if table is None:
        header = _split_text(text, name)[0]
        raise EngineInputError(
            f"{name} has columns {', '.join(header)}: neither a cycling table (needs "
            f"{', '.join(CYCLING_COLUMNS['required'])}) nor an EIS table (needs "
            f"{', '.join(EIS_COLUMNS['required'])})"
        )
    return table


def read_cycling(path: str | os.PathLike) -> Table:
    """:func:`read_table` insisting on a cycling table."""
    return read_table(path, expected_kind="cycling")


def read_eis(path: str | os.PathLike) -> Table:
    """:func:`read_table` insisting on an EIS table."""
    return read_table(path, expected_kind="eis")


def write_table(
    path: str | os.PathLike,
    columns: Mapping[str, Sequence[float] | np.ndarray],
    *,
    metadata: Mapping[str, Any] | None = None,
    float_format: str = "{:.9g}",
) -> None:
    """Write columns (equal lengths) as a CSV with ``# key: value`` metadata lines, atomically.

    Integer-valued columns named ``cycle`` are written without decimals.
    """
    from analysis_engine.io.common import atomic_output

    arrays = {k: np.asarray(v) for k, v in columns.items()}
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise EngineInputError(f"table columns have different lengths: {sorted(lengths)}")
    buf = io.StringIO()
    for key, value in (metadata or {}).items():
        buf.write(f"# {key}: {value}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(arrays))
    for i in range(lengths.pop()):
        writer.writerow(
            [
                str(int(v[i])) if k == "cycle" else float_format.format(float(v[i]))
                for k, v in arrays.items()
            ]
        )
    with atomic_output(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def inspect_table(path: str | os.PathLike, *, expected_kind: str | None = None):
    """Upload check of a text file: a cycling or EIS CSV, or plain text (kind ``other``).

    Called by :func:`analysis_engine.io.sniff.sniff` for text files.

    Returns
    -------
    analysis_engine.io.sniff.FileInfo
        ``kind`` "cycling" or "eis" with metadata ``rows``, ``columns`` and the table's own
        ``# key: value`` lines (under ``header``), or ``other`` for a text file that is no
        table (only when it is not named ``.csv``/``.tsv`` and no table kind was declared).

    Raises
    ------
    EngineInputError
        As :func:`read_table`, for files that are (or claim to be) tables.
    """
    from analysis_engine.io.sniff import FileInfo

    p = Path(path)
    declared = expected_kind if expected_kind in ("cycling", "eis") else None
    text, name = _read_text(p)
    table = _parse(text, name, declared)
    if table is None:
        if p.suffix.lower() in {".csv", ".tsv"}:
            read_table(p)  # raises the explanatory message
        return FileInfo(kind="other", format="text", metadata={"bytes": p.stat().st_size})
    meta: dict[str, Any] = {"rows": table.n_rows, "columns": list(table.columns)}
    if table.metadata:
        meta["header"] = dict(table.metadata)
    if table.kind == "cycling":
        meta["cycles"] = int(table.columns["cycle"].max())
    else:
        f = table.columns["frequency_hz"]
        meta["frequency_range_hz"] = [float(f.min()), float(f.max())]
    return FileInfo(kind=table.kind, format=f"{table.kind}-csv", metadata=meta)
