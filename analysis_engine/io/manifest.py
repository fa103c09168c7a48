"""Beamtime manifests: which file of a beamtime directory is what (cell, state, region, kind).

A manifest sits in the beamtime directory and names files relative to it. Two spellings:

YAML (``manifest.yaml``)::

    beamtime: {facility: Diamond Light Source, beamline: I12, proposal: EE12345,
               beam_energy_kev: 115, detector: HEXITEC, start_date: 2021-06-01}
    samples:
      - {name: DIT NMC811, material: NMC811, fabrication_method: dit, thickness_um: 1000}
    cells:
      - {name: DIT-1, cathode: DIT NMC811, format: CR2032}
    charge_states:          # optional: states named by files are created with defaults
      - {cell: DIT-1, state: charged, cycle_number: 1, c_rate: 0.5}
    files:
      - {path: xct/dit_charged.nxs, kind: xct_projections, cell: DIT-1, state: charged}
      - {path: xcsi/dit_charged_r1.h5, kind: xcs_events, cell: DIT-1, state: charged, region: 1}
      - {path: echem/dit_cycling.csv, kind: cycling, cell: DIT-1}
      - {path: xcsi/raw_r1.bin, kind: xcs_frames, cell: DIT-1, state: charged, region: 1,
         calibration: HEXITEC-1}
    calibrations:           # optional: per-pixel HEXITEC calibration arrays (80 x 80)
      - {name: HEXITEC-1, folder: calibration/}   # gradients.*, intercepts.*, thresholds.*
      # or name the files: {name: ..., gradients: g.txt, intercepts: i.npy, thresholds: t.txt}

CSV (``manifest.csv``), one row per file, columns ``path, kind`` (required) and ``sample,
fabrication_method, cell, state, cycle_number, region, name, facility, beamline, proposal``
(optional). Cells and samples named in the rows are created with those fields; a CSV manifest
describes at most one beamtime (``facility``/``beamline`` equal in every row that sets them).

Every problem found is reported at once, each with the entry at fault.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from analysis_engine.errors import EngineInputError
from analysis_engine.io.sniff import DATASET_KINDS

__all__ = [
    "ManifestCalibration",
    "ManifestFile",
    "BeamtimeManifest",
    "read_manifest",
    "find_manifest",
    "STATES",
]

STATES = ("pristine", "charged", "discharged", "other")
FABRICATION_METHODS = ("dit", "slurry", "other")
MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.csv")

_BEAMTIME_FIELDS = {
    "facility": str,
    "beamline": str,
    "proposal": str,
    "start_date": dt.date,
    "end_date": dt.date,
    "beam_energy_kev": float,
    "detector": str,
    "notes": str,
}
_SAMPLE_FIELDS = {
    "name": str,
    "material": str,
    "fabrication_method": str,
    "thickness_um": float,
    "composition": str,
    "mass_loading_mg_cm2": float,
    "nominal_porosity": float,
    "notes": str,
}
_CELL_FIELDS = {
    "name": str,
    "cathode": str,
    "format": str,
    "counter_electrode": str,
    "separator": str,
    "electrolyte": str,
    "assembly_date": dt.date,
    "notes": str,
}
_STATE_FIELDS = {
    "cell": str,
    "state": str,
    "cycle_number": int,
    "c_rate": float,
    "voltage_min_v": float,
    "voltage_max_v": float,
    "capacity_mah_g": float,
    "notes": str,
}
_FILE_FIELDS = {
    "path": str,
    "kind": str,
    "cell": str,
    "state": str,
    "cycle_number": int,
    "region": int,
    "name": str,
    "notes": str,
    "calibration": str,
}
_CALIBRATION_FIELDS = {
    "name": str,
    "folder": str,
    "gradients": str,
    "intercepts": str,
    "thresholds": str,
    "notes": str,
}
CALIBRATION_MAPS = ("gradients", "intercepts", "thresholds")


@dataclass(frozen=True)
class ManifestCalibration:
    """Per-pixel HEXITEC calibration arrays named by the manifest (absolute paths)."""

    name: str
    gradients: Path
    intercepts: Path
    thresholds: Path | None = None
    notes: str = ""


@dataclass(frozen=True)
class ManifestFile:
    """One file of the manifest; ``path`` is absolute, ``relative_path`` as written."""

    path: Path
    relative_path: str
    kind: str
    cell: str | None = None
    state: str | None = None
    cycle_number: int | None = None
    region: int | None = None
    name: str | None = None
    notes: str = ""
    calibration: str | None = None


@dataclass(frozen=True)
class BeamtimeManifest:
    """A validated manifest. Samples, cells and charge states are dicts of model fields."""

    root: Path
    beamtime: dict[str, Any] | None
    samples: tuple[dict[str, Any], ...]
    cells: tuple[dict[str, Any], ...]
    charge_states: tuple[dict[str, Any], ...]
    files: tuple[ManifestFile, ...] = field(default_factory=tuple)
    calibrations: tuple[ManifestCalibration, ...] = field(default_factory=tuple)


def find_manifest(directory: str | os.PathLike) -> Path:
    """The manifest file of a beamtime directory (``manifest.yaml``, ``.yml`` or ``.csv``)."""
    d = Path(directory)
    if d.is_file():
        return d
    if not d.is_dir():
        raise EngineInputError(f"beamtime directory not found: {d}")
    for name in MANIFEST_NAMES:
        if (d / name).is_file():
            return d / name
    raise EngineInputError(
        f"{d} holds no manifest: expected one of {', '.join(MANIFEST_NAMES)} naming each file's "
        "kind, cell, charge state and region"
    )


def _coerce(value: Any, kind: type, where: str, key: str, errors: list[str]) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if kind is str:
            return str(value).strip()
        if kind is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind is float:
            return float(value)
        if kind is dt.date:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value).strip())
    except (TypeError, ValueError):
        expected = {int: "a whole number", float: "a number", dt.date: "a date YYYY-MM-DD"}[kind]
        errors.append(f"{where}: {key} must be {expected}, got {value!r}")
    return None


def _record(
    raw: Any, fields: Mapping[str, type], where: str, errors: list[str], *, required=()
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
        return {}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        errors.append(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(fields)}"
        )
    out = {}
    for key, kind in fields.items():
        value = _coerce(raw.get(key), kind, where, key, errors)
        if value is not None:
            out[key] = value
    for key in required:
        if key not in out and not any(e.startswith(f"{where}: {key} ") for e in errors):
            errors.append(f"{where}: {key} is required")
    return out


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise EngineInputError(f"{path.name} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise EngineInputError(
            f"{path.name} must be a YAML mapping with keys beamtime, samples, cells, "
            "charge_states, files"
        )
    allowed = {"beamtime", "samples", "cells", "charge_states", "files", "calibrations"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise EngineInputError(
            f"{path.name}: unknown top-level key(s) {', '.join(map(str, unknown))}; allowed: "
            "beamtime, samples, cells, charge_states, files, calibrations"
        )
    return dict(data)


def _load_csv(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    if not rows:
        raise EngineInputError(f"{path.name} has no rows: one row per file is expected")
    header = {h.strip() for h in rows[0]}
    missing = {"path", "kind"} - header
    if missing:
        raise EngineInputError(
            f"{path.name} lacks the column(s) {', '.join(sorted(missing))}; a CSV manifest "
            "needs path, kind and optionally sample, fabrication_method, cell, state, "
            "cycle_number, region, name, facility, beamline, proposal"
        )
    samples: dict[str, dict] = {}
    cells: dict[str, dict] = {}
    files, beamtime = [], {}
    for i, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        cell, sample = row.get("cell"), row.get("sample")
        if cell:
            cells.setdefault(cell, {"name": cell, "cathode": sample or f"{cell} cathode"})
            name = cells[cell]["cathode"]
            samples.setdefault(name, {"name": name, "material": "unknown"})
            if row.get("fabrication_method"):
                samples[name]["fabrication_method"] = row["fabrication_method"]
        for key in ("facility", "beamline", "proposal"):
            if row.get(key):
                if beamtime.get(key, row[key]) != row[key]:
                    raise EngineInputError(
                        f"{path.name} line {i}: {key} {row[key]!r} differs from earlier rows "
                        f"({beamtime[key]!r}); one manifest describes one beamtime"
                    )
                beamtime[key] = row[key]
        files.append(
            {
                k: row[k]
                for k in ("path", "kind", "cell", "state", "cycle_number", "region", "name")
                if row.get(k)
            }
            | {"_line": i}
        )
    return {
        "beamtime": beamtime or None,
        "samples": list(samples.values()),
        "cells": list(cells.values()),
        "files": files,
    }


def read_manifest(path: str | os.PathLike, *, check_files: bool = True) -> BeamtimeManifest:
    """Read and validate a beamtime manifest (YAML or CSV).

    Parameters
    ----------
    path
        The manifest, or a directory holding ``manifest.yaml`` / ``.yml`` / ``.csv``.
    check_files
        Also require every listed file to exist inside the manifest's directory.

    Returns
    -------
    BeamtimeManifest

    Raises
    ------
    EngineInputError
        Listing every problem: unknown kinds or states, bad regions, files missing or outside
        the directory or listed twice, cells without a sample, files naming undefined cells,
        a region without a charge state, malformed values.
    """
    p = find_manifest(path)
    root = p.parent.resolve()
    data = _load_csv(p) if p.suffix.lower() == ".csv" else _load_yaml(p)
    errors: list[str] = []

    def section(name: str) -> list:
        value = data.get(name) or []
        if not isinstance(value, list):
            errors.append(f"{name} must be a list of entries")
            return []
        return value

    beamtime = None
    if data.get("beamtime"):
        beamtime = _record(
            data["beamtime"],
            _BEAMTIME_FIELDS,
            "beamtime",
            errors,
            required=("facility", "beamline"),
        )
    samples = [
        _record(s, _SAMPLE_FIELDS, f"samples[{i}]", errors, required=("name",))
        for i, s in enumerate(section("samples"))
    ]
    for i, s in enumerate(samples):
        s.setdefault("material", "unknown")
        method = s.get("fabrication_method")
        if method and method not in FABRICATION_METHODS:
            errors.append(
                f"samples[{i}]: fabrication_method {method!r} is not one of "
                f"{', '.join(FABRICATION_METHODS)}"
            )
    sample_names = {s.get("name") for s in samples}
    cells = [
        _record(c, _CELL_FIELDS, f"cells[{i}]", errors, required=("name", "cathode"))
        for i, c in enumerate(section("cells"))
    ]
    for i, c in enumerate(cells):
        if c.get("cathode") and c["cathode"] not in sample_names:
            errors.append(
                f"cells[{i}] ({c.get('name')}): cathode {c['cathode']!r} is not a sample of this "
                f"manifest (samples: {', '.join(sorted(n for n in sample_names if n)) or 'none'})"
            )
    cell_names = {c.get("name") for c in cells}
    for label, names in (("sample", [s.get("name") for s in samples]), ("cell", list(cell_names))):
        dupes = sorted({n for n in names if n and names.count(n) > 1})
        if dupes:
            errors.append(f"{label} name(s) listed twice: {', '.join(dupes)}")
    states = [
        _record(s, _STATE_FIELDS, f"charge_states[{i}]", errors, required=("cell", "state"))
        for i, s in enumerate(section("charge_states"))
    ]
    for i, s in enumerate(states):
        s.setdefault("cycle_number", 0)
        if s.get("cell") and s["cell"] not in cell_names:
            errors.append(f"charge_states[{i}]: cell {s['cell']!r} is not defined under cells")
        if s.get("state") and s["state"] not in STATES:
            errors.append(
                f"charge_states[{i}]: state {s['state']!r} is not one of {', '.join(STATES)}"
            )

    calibrations = _calibrations(section("calibrations"), root, errors, check_files)
    calibration_names = {c.name for c in calibrations}
    files: list[ManifestFile] = []
    seen: dict[Path, str] = {}
    for i, raw in enumerate(section("files")):
        where = (
            f"{p.name} line {raw.pop('_line')}"
            if isinstance(raw, dict) and "_line" in raw
            else f"files[{i}]"
        )
        rec = _record(raw, _FILE_FIELDS, where, errors, required=("path", "kind"))
        rel = rec.get("path")
        if rec.get("kind") and rec["kind"] not in DATASET_KINDS:
            errors.append(f"{where}: kind {rec['kind']!r} is not one of {', '.join(DATASET_KINDS)}")
        if rec.get("cell") and rec["cell"] not in cell_names:
            errors.append(f"{where}: cell {rec['cell']!r} is not defined under cells")
        if rec.get("state") and rec["state"] not in STATES:
            errors.append(f"{where}: state {rec['state']!r} is not one of {', '.join(STATES)}")
        if rec.get("state") and not rec.get("cell"):
            errors.append(f"{where}: a charge state needs its cell")
        region = rec.get("region")
        if region is not None and not 1 <= region <= 32767:
            errors.append(f"{where}: region must be a whole number >= 1 (1 = separator side)")
        if region is not None and not rec.get("state"):
            errors.append(f"{where}: a depth region needs the charge state it was measured in")
        if rec.get("calibration") and rec["calibration"] not in calibration_names:
            errors.append(
                f"{where}: calibration {rec['calibration']!r} is not defined under calibrations"
            )
        if not rel:
            continue
        if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            errors.append(f"{where}: path {rel!r} must be relative to the manifest's directory")
            continue
        full = (root / rel).resolve()
        if full in seen:
            errors.append(f"{where}: {rel} is already listed ({seen[full]})")
            continue
        seen[full] = where
        if check_files and not full.is_file():
            errors.append(f"{where}: file {rel} not found in {root}")
        files.append(
            ManifestFile(
                path=full,
                relative_path=rel,
                kind=rec.get("kind", "other"),
                cell=rec.get("cell"),
                state=rec.get("state"),
                cycle_number=rec.get("cycle_number"),
                region=region,
                name=rec.get("name"),
                notes=rec.get("notes", ""),
                calibration=rec.get("calibration"),
            )
        )
    if not files and not errors:
        errors.append("the manifest lists no files")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise EngineInputError(f"{p.name} has {len(errors)} problem(s):\n- " + "\n- ".join(shown))
    return BeamtimeManifest(
        root=root,
        beamtime=beamtime,
        samples=tuple(samples),
        cells=tuple(cells),
        charge_states=tuple(states),
        files=tuple(files),
        calibrations=tuple(calibrations),
    )


def _calibration_file(folder: Path, name: str) -> Path | None:
    for suffix in (".npy", ".txt", ".dat", ".csv", ""):
        for candidate in (folder / f"{name}{suffix}", folder / f"{name[:-1]}{suffix}"):
            if candidate.is_file():
                return candidate
    return None


def _calibrations(
    raw: list, root: Path, errors: list[str], check_files: bool
) -> list[ManifestCalibration]:
    """Calibration entries: a ``folder`` holding ``gradients``/``intercepts``/``thresholds``
    (``.npy``, ``.txt``, ``.dat``; singular names too) or the three files named one by one."""
    out: list[ManifestCalibration] = []
    for i, item in enumerate(raw):
        where = f"calibrations[{i}]"
        rec = _record(item, _CALIBRATION_FIELDS, where, errors, required=("name",))
        paths: dict[str, Path | None] = {}
        rels = [rec.get(k) for k in ("folder", *CALIBRATION_MAPS) if rec.get(k)]
        if any(PurePosixPath(r).is_absolute() or ".." in PurePosixPath(r).parts for r in rels):
            errors.append(f"{where}: paths must be relative to the manifest's directory")
            continue
        if rec.get("folder"):
            folder = root / rec["folder"]
            if check_files and not folder.is_dir():
                errors.append(f"{where}: folder {rec['folder']} not found in {root}")
                continue
            for key in CALIBRATION_MAPS:
                paths[key] = _calibration_file(folder, key) if folder.is_dir() else None
        else:
            for key in CALIBRATION_MAPS:
                paths[key] = root / rec[key] if rec.get(key) else None
        for key in ("gradients", "intercepts"):
            if paths.get(key) is None or (check_files and not paths[key].is_file()):
                errors.append(f"{where}: no {key} array found (.npy or text, 80 x 80)")
        if rec.get("thresholds") and check_files and not paths["thresholds"].is_file():
            errors.append(f"{where}: thresholds file {rec['thresholds']} not found")
        if any(e.startswith(where) for e in errors) or not rec.get("name"):
            continue
        out.append(ManifestCalibration(rec["name"], paths["gradients"], paths["intercepts"],
                                       paths.get("thresholds"), rec.get("notes", "")))  # fmt: skip
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"calibration name(s) listed twice: {', '.join(dupes)}")
    return out
