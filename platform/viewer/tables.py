"""Summaries and report rows as tables people read: a name, a unit and a sensible precision
for every key, derived from the key's unit suffix (the engine's naming convention)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["describe", "format_value", "summary_rows", "table_columns"]

# unit suffixes of engine keys, longest first
UNITS = (
    ("_1e-9_cm2_s", "10⁻⁹ cm²/s"),
    ("_ohm_s05", "Ω s⁻½"),
    ("_mol_cm3", "mol/cm³"),
    ("_cm2_s", "cm²/s"),
    ("_mah_g", "mAh/g"),
    ("_vol_pct", "vol%"),
    ("_pct", "%"),
    ("_cm2", "cm²"),
    ("_kev", "keV"),
    ("_ohm", "Ω"),
    ("_deg", "°"),
    ("_um", "µm"),
    ("_mm", "mm"),
    ("_hz", "Hz"),
    ("_au", "a.u."),
    ("_px", "px"),
    ("_k", "K"),
    ("_f", "F"),
    ("_s", "s"),
)
NAMES = {
    "li": "Li (1 − x)",
    "s": "S",
    "r_e": "R_e",
    "r_ct": "R_CT",
    "c_dl": "C_dl",
    "warburg_sigma": "Warburg σ",
    "d_overall": "D_overall",
    "d_directional": "D_directional",
    "tau": "τ",
    "relative_rms": "relative RMS residual",
    "directional_over_overall": "D_directional / D_overall",
    "eis_result": "EIS result",
}


def describe(key: str) -> tuple[str, str]:
    """(label, unit) of a summary key, e.g. ``d_overall_cm2_s`` -> ("D_overall", "cm²/s")."""
    unit = ""
    stem = key
    for suffix, text in UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            stem, unit = key[: -len(suffix)], text
            break
    uncertainty = stem.endswith("_sigma") and stem != "warburg_sigma"
    if uncertainty:
        stem = stem[: -len("_sigma")]
    label = NAMES.get(stem)
    if label is None:
        words = stem.replace("_", " ").strip()
        for short, long in (("li ", "Li "), (" li", " Li"), ("xct", "XCT"), ("eis", "EIS")):
            words = words.replace(short, long)
        label = words[:1].upper() + words[1:]
    if uncertainty:
        label = f"u({label})"
    return label, unit


def format_value(value: Any, *, digits: int = 4) -> str:
    """Numbers to ``digits`` significant figures (integers as they are); lists joined."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(format_value(v, digits=digits) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {format_value(v, digits=digits)}" for k, v in value.items())
    return str(value)


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(label, value, unit) per key; per-region lists spelled out by region."""
    rows = []
    for key, value in summary.items():
        label, unit = describe(key)
        if key.endswith("_by_region") and isinstance(value, list):
            stem_label, stem_unit = describe(key[: -len("_by_region")])
            for i, v in enumerate(value, start=1):
                rows.append((f"{stem_label}, region {i}", format_value(v), stem_unit))
            continue
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            continue  # row tables (e.g. the transport table) have figures and reports
        rows.append((label, format_value(value), unit))
    return rows


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(key, header with unit) for the union of the row keys, in first-seen order; keys
    starting with ``_`` (e.g. ``_notes``: {column: footnote}) are annotations, not columns."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys and not k.startswith("_"))
    out = []
    for key in keys:
        label, unit = describe(key)
        out.append((key, f"{label} ({unit})" if unit else label))
    return out
