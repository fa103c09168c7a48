"""Dataset previews: a few Plotly figures and a facts table per dataset kind, computed from a
bounded read of the file by engine functions.

A light background task (``viewer.tasks.compute_dataset_preview``, started by
``viewer.signals`` when a dataset becomes ready) stores the preview as JSON in the media
storage under a name that carries the file's signature; the dataset page shows the stored one,
and computes it on request (cached by file, size and mtime) when none is stored yet.

events: counts map, summed spectrum, frame rate and occupancy (first ``EVENTS_SAMPLE`` events);
spectra: summed spectrum with the S windows marked; cycling: capacity and Coulombic efficiency;
EIS: Nyquist and Bode; NXtomo and reconstructions: facts here, slices in the viewer.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
from catalogue.models import Dataset
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from jobs import figures
from projects import store

from analysis_engine.electrochem.cycling import coulombic_efficiency
from analysis_engine.errors import EngineError, EngineInputError
from analysis_engine.io.common import to_jsonable
from analysis_engine.io.nxtomo import inspect_reconstruction, read_nxtomo_info
from analysis_engine.io.slices import read_events_head
from analysis_engine.io.spectra import read_spectra
from analysis_engine.io.tables import read_table
from analysis_engine.preview import events_preview, s_windows_kev

__all__ = [
    "preview_for_dataset",
    "store_preview",
    "stored_preview",
    "stored_preview_name",
    "has_preview",
    "EVENTS_SAMPLE",
]

EVENTS_SAMPLE = 2_000_000
CACHE_SECONDS = 24 * 3600


def _fact(label: str, value: Any, unit: str = "") -> dict[str, Any]:
    return {"label": label, "value": value, "unit": unit}


def _events(path: str) -> dict[str, Any]:
    head = read_events_head(path, max_events=EVENTS_SAMPLE)
    p = events_preview(
        head["frame"],
        head["row"],
        head["col"],
        head["energy_kev"],
        rows=head["rows"],
        cols=head["cols"],
    )
    rate = head["frame_rate_hz"]
    facts = [
        _fact("events in file", head["n_events"]),
        _fact("events sampled", p.events_sampled),
        _fact("frames sampled", p.frames_sampled),
        _fact("frame rate", rate, "Hz"),
        _fact("events per frame", round(p.events_per_frame, 3)),
        _fact("occupancy (pixels hit per frame)", round(100 * p.occupancy, 4), "%"),
    ]
    if rate:
        facts.append(_fact("event rate", round(p.events_per_frame * rate), "1/s"))
    figs = {
        "counts": figures.map_figure(
            p.counts,
            title="Counts per pixel (sample)",
            colorbar="counts",
            pixel_mm=figures.COMPTON_PIXEL_MM,
        ),
        "spectrum": figures.line_figure(
            p.energy_kev,
            p.spectrum,
            title="Summed spectrum (sample, unclustered)",
            xtitle="energy (keV)",
            ytitle="counts",
            log_y=True,
        ),
    }
    return {"facts": facts, "figures": figs}


def _spectra(path: str) -> dict[str, Any]:
    energy, cube, attrs = read_spectra(path)
    summed = cube.sum(axis=(0, 1), dtype=np.float64)
    windows = s_windows_kev()
    facts = [
        _fact("pixels", f"{cube.shape[0]} x {cube.shape[1]}"),
        _fact("energy bins", cube.shape[2]),
        _fact("energy range", f"{energy[0]:.2f} - {energy[-1]:.2f}", "keV"),
        _fact("total counts", int(summed.sum())),
    ]
    figs = {
        "spectrum": figures.spectrum_with_windows(
            energy, summed, windows, title="Summed spectrum with the S-parameter windows"
        ),
        "counts": figures.map_figure(
            cube.sum(axis=2, dtype=np.float64),
            title="Counts per pixel",
            colorbar="counts",
            pixel_mm=figures.COMPTON_PIXEL_MM,
        ),
    }
    return {"facts": facts, "figures": figs}


def _cycling(path: str) -> dict[str, Any]:
    cols = read_table(path, expected_kind="cycling").columns
    order = np.argsort(cols["cycle"], kind="stable")
    cyc = cols["cycle"][order]
    c, d = cols["charge_capacity_mah_g"][order], cols["discharge_capacity_mah_g"][order]
    ce = coulombic_efficiency(c, d)
    facts = [
        _fact("cycles", int(cyc.size)),
        _fact("first charge capacity", round(float(c[0]), 2), "mAh/g"),
        _fact("first discharge capacity", round(float(d[0]), 2), "mAh/g"),
    ]
    return {"facts": facts, "figures": {"cycling": figures.cycling_figure(cyc, c, d, ce)}}


def _eis(path: str) -> dict[str, Any]:
    cols = read_table(path, expected_kind="eis").columns
    f = cols["frequency_hz"]
    facts = [
        _fact("frequencies", int(f.size)),
        _fact("frequency range", f"{f.min():.3g} - {f.max():.3g}", "Hz"),
    ]
    figs = figures.eis_figures(f, cols["z_real_ohm"], cols["z_imag_ohm"])
    return {"facts": facts, "figures": figs}


def _nxtomo(path: str) -> dict[str, Any]:
    info = read_nxtomo_info(path)
    pixel = info.pixel_size_m * 1e6 if info.pixel_size_m else None
    facts = [
        _fact("projections", info.n_projections),
        _fact("flats", int(info.flat_indices.size)),
        _fact("darks", int(info.dark_indices.size)),
        _fact("detector", f"{info.n_rows} x {info.n_cols}", "px"),
        _fact("scan range", info.scan_range_deg, "deg"),
        _fact("pixel size", round(pixel, 4) if pixel else None, "um"),
    ]
    return {"facts": facts, "figures": {}, "viewer": True}


def _reconstruction(path: str) -> dict[str, Any]:
    info = inspect_reconstruction(path)
    facts = [
        _fact("shape (slices, rows, cols)", " x ".join(str(s) for s in info["shape"])),
        _fact("voxel size", info["voxel_size_um"], "um"),
        _fact("centre of rotation", info["center_of_rotation"], "px"),
    ]
    return {"facts": facts, "figures": {}, "viewer": True}


BUILDERS = {
    "xcs_events": _events,
    "xcs_spectra": _spectra,
    "cycling": _cycling,
    "eis": _eis,
    "xct_projections": _nxtomo,
    "xct_reconstruction": _reconstruction,
}


#: bump when the builders change what they produce, so stored previews are recomputed
PREVIEW_VERSION = 1


def has_preview(dataset: Dataset) -> bool:
    """True when the dataset's kind has a preview builder."""
    return dataset.kind in BUILDERS


def _checked_path(dataset: Dataset) -> str:
    if not dataset.file:
        raise EngineInputError("the dataset has no file")
    path = store.local_path(dataset.file)
    if not os.path.exists(path):
        raise EngineInputError("the dataset's file is missing from storage")
    return path


def _signature(dataset: Dataset, path: str) -> str:
    st = os.stat(path)
    raw = f"{dataset.kind}|{dataset.sha256}|{st.st_size}|{st.st_mtime_ns}|{PREVIEW_VERSION}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def stored_preview_name(dataset: Dataset) -> str:
    """Storage name of the dataset's stored preview for its current file.

    Raises
    ------
    EngineInputError
        No file, or a missing file.
    """
    path = _checked_path(dataset)
    return f"previews/{dataset.project_id}/{dataset.pk}-{_signature(dataset, path)}.json"


def stored_preview(dataset: Dataset) -> dict[str, Any] | None:
    """The stored preview of the current file, or None when none is stored (yet)."""
    try:
        name = stored_preview_name(dataset)
        if not default_storage.exists(name):
            return None
        with default_storage.open(name, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (EngineError, OSError, ValueError):
        return None


def _compute(dataset: Dataset, path: str) -> dict[str, Any]:
    return to_jsonable({"kind": dataset.kind, **BUILDERS[dataset.kind](path)})


def store_preview(dataset: Dataset) -> dict[str, Any]:
    """Compute the dataset's preview and store it (what the readiness task runs).

    A file the engine cannot read stores ``{"error": message}`` so the page says why; older
    stored previews of the same dataset are removed.

    Raises
    ------
    EngineInputError
        No file or a missing file (nothing is stored then).
    """
    path = _checked_path(dataset)
    name = stored_preview_name(dataset)
    try:
        body = _compute(dataset, path)
    except (EngineError, OSError, ValueError) as exc:
        body = {"kind": dataset.kind, "error": str(exc)}
    body["stored_at"] = timezone.now().isoformat(timespec="seconds")
    folder = f"previews/{dataset.project_id}"
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError, OSError):
        files = []
    for old in files:
        if old.startswith(f"{dataset.pk}-") and f"{folder}/{old}" != name:
            default_storage.delete(f"{folder}/{old}")
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(json.dumps(body).encode("utf-8")))
    return body


def preview_for_dataset(dataset: Dataset) -> dict[str, Any]:
    """``{"kind", "facts": [{"label", "value", "unit"}], "figures": {name: plotly}}``: the
    stored preview when there is one, else computed now (and cached).

    Raises
    ------
    EngineInputError
        No file, a missing file, or a file the engine cannot read (with its message).
    """
    if not has_preview(dataset):
        return {"kind": dataset.kind, "facts": [], "figures": {}, "none": True}
    path = _checked_path(dataset)
    stored = stored_preview(dataset)
    if stored is not None:
        if "error" in stored:
            raise EngineInputError(stored["error"])
        return {**stored, "stored": True}
    st = os.stat(path)
    key = (
        "preview:"
        + hashlib.sha256(
            f"{path}|{st.st_size}|{st.st_mtime_ns}|{dataset.kind}".encode()
        ).hexdigest()
    )
    cached = cache.get(key)
    if cached is None:
        cached = _compute(dataset, path)
        cache.set(key, cached, CACHE_SECONDS)
    return cached
