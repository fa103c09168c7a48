"""The digital twin's beamtime in the files a real beamtime produces.

:func:`write_native_formats` converts what :func:`~analysis_engine.synthetic.beamtime.make_beamtime`
wrote into ``OUTDIR/native/``:

- ``xcsi/*.bin``: HEXITEC raw frames (``.bin``) of every event list, with the detector's
  interleaved column order, plus ``calibration/<cell>/{gradients,intercepts,thresholds}.txt``
  from the list's per-pixel calibration. The twin's photons are sparse (about one per frame),
  so a frame-by-frame dump would be 12.8 kB per mostly empty frame; instead the hits of
  consecutive frames share one ``.bin`` frame as long as no two clusters touch (8-connected
  with a one-pixel gap), which leaves every cluster -- and so every spectrum -- unchanged.
- ``xcsi/*.hxt``: the per-pixel spectra of each event list as the HEXITEC software exports
  them (``.hxt`` v3, 0.25 keV bins over 60-130 keV, the Compton and elastic region).
- ``xct/*.nxs``: each NXtomo scan in Diamond's layout, an ``NXsubentry``
  ``/entry1/tomo_entry`` (definition NXtomo) whose ``data/data`` and
  ``instrument/detector/data`` are soft links to the detector group ``/entry1/pco1_hw_hdf``,
  angles at ``sample/rotation_angle`` in degrees.
- ``manifest.yaml``: the same catalogue with these files, calibrations listed under
  ``calibrations`` and named by each ``.bin`` entry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numba
import numpy as np
import yaml

from analysis_engine.events.commands import run_events
from analysis_engine.io.common import atomic_output
from analysis_engine.io.hexitec import HexitecEventReader
from analysis_engine.io.hexitec_native import (
    FRAME_VALUES,
    scramble_frames,
    write_calibration_arrays,
    write_hxt,
)
from analysis_engine.io.nxtomo import read_nxtomo_info
from analysis_engine.io.spectra import read_spectra

__all__ = ["write_native_formats", "pack_events_into_frames", "HXT_RANGE_KEV", "HXT_BIN_KEV"]

HXT_RANGE_KEV = (60.0, 130.0)
HXT_BIN_KEV = 0.25


@numba.njit(cache=True)
def _first_fit(starts, row, col, adu, rows, cols):  # pragma: no cover - compiled
    n_groups = len(starts) - 1
    capacity = 64
    frames = np.zeros((capacity, rows, cols), np.uint16)
    blocked = np.zeros((capacity, rows + 2, cols + 2), np.bool_)
    low = np.zeros((rows + 2, cols + 2), np.int64)  # below this, the pixel is blocked
    used = 0
    for g in range(n_groups):
        k = 0
        for e in range(starts[g], starts[g + 1]):
            r, c = row[e] + 1, col[e] + 1
            while low[r, c] < used and blocked[low[r, c], r, c]:
                low[r, c] += 1
            k = max(k, low[r, c])
        while k < used:
            ok = True
            for e in range(starts[g], starts[g + 1]):
                if blocked[k, row[e] + 1, col[e] + 1]:
                    ok = False
                    break
            if ok:
                break
            k += 1
        if k == used:
            if used == capacity:
                capacity *= 2
                grown = np.zeros((capacity, rows, cols), np.uint16)
                grown[:used] = frames
                frames = grown
                grown_b = np.zeros((capacity, rows + 2, cols + 2), np.bool_)
                grown_b[:used] = blocked
                blocked = grown_b
            used += 1
        for e in range(starts[g], starts[g + 1]):
            frames[k, row[e], col[e]] = adu[e]
            for dr in range(3):
                for dc in range(3):
                    blocked[k, row[e] + dr, col[e] + dc] = True
    return frames[:used].copy()


def pack_events_into_frames(
    frame: np.ndarray, row: np.ndarray, col: np.ndarray, adu: np.ndarray, *, rows: int = 80,
    cols: int = 80,
) -> np.ndarray:  # fmt: skip
    """Pack sparse events into few (n, rows, cols) uint16 frames without changing clusters.

    Events of one input frame stay together; they go into the first output frame (first fit)
    where none of their pixels is within one pixel of a pixel already there, so clusters
    neither merge nor split. The frame count approaches the largest number of hits on one
    pixel.
    """
    if len(frame) == 0:
        return np.zeros((0, rows, cols), np.uint16)
    starts = np.r_[0, np.flatnonzero(np.diff(frame)) + 1, len(frame)].astype(np.int64)
    return _first_fit(starts, np.asarray(row, np.int64), np.asarray(col, np.int64),
                      np.asarray(adu, np.uint16), rows, cols)  # fmt: skip


def _bin_and_calibration(src: Path, bin_path: Path, cal_dir: Path) -> dict[str, Any]:
    with HexitecEventReader(src) as reader:
        if not reader.is_adu:
            raise ValueError(f"{src.name}: the twin's event lists are in ADU")
        keys = ("frame", "row", "col", "values")
        parts = {k: [] for k in keys}
        for block in reader.blocks():
            for k in keys:
                parts[k].append(np.array(getattr(block, k)))
        ev = {k: np.concatenate(v) if v else np.empty(0, np.uint32) for k, v in parts.items()}
        cal = reader.calibration
    frames = pack_events_into_frames(
        ev["frame"], ev["row"].astype(np.intp), ev["col"].astype(np.intp), ev["values"]
    )
    with atomic_output(bin_path) as tmp:
        scramble_frames(frames).astype("<u2").tofile(tmp)
    if not (cal_dir / "gradients.txt").exists():
        threshold = np.ones(cal.gain_kev_per_adu.shape)  # every recorded ADU is a hit
        write_calibration_arrays(cal_dir, cal.gain_kev_per_adu, cal.offset_kev, threshold)
    return {"events": int(len(ev["frame"])), "frames": int(len(frames)),
            "bytes": int(len(frames) * FRAME_VALUES * 2)}  # fmt: skip


def _hxt(src: Path, hxt_path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=hxt_path.parent) as tmp:
        spectra = Path(tmp) / "spectra.h5"
        run_events(src, spectra, bin_width_kev=HXT_BIN_KEV, range_kev=HXT_RANGE_KEV)
        energy, cube, _ = read_spectra(spectra)
    write_hxt(hxt_path, energy, cube, prefix=src.stem, timestamp="210601_120000")


def _diamond_nxtomo(src: Path, dst: Path) -> None:
    info = read_nxtomo_info(src)
    with h5py.File(src, "r") as f, atomic_output(dst) as tmp, h5py.File(tmp, "w") as out:
        data = f[info.data_path]
        keys = f[info.entry_path + "/data/image_key"][()]
        angles = f[info.entry_path + "/data/rotation_angle"][()]
        entry = out.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        det = entry.create_group("pco1_hw_hdf")
        det.attrs["NX_class"] = "NXdetector"
        copy = det.create_dataset("data", shape=data.shape, dtype=data.dtype,
                                  chunks=(1, *data.shape[1:]))  # fmt: skip
        for i in range(0, data.shape[0], 64):
            copy[i : i + 64] = data[i : i + 64]
        tomo = entry.create_group("tomo_entry")
        tomo.attrs["NX_class"] = "NXsubentry"
        tomo["definition"] = "NXtomo"
        inst = tomo.create_group("instrument/detector")
        inst.attrs["NX_class"] = "NXdetector"
        inst["data"] = h5py.SoftLink("/entry1/pco1_hw_hdf/data")
        inst["image_key"] = np.asarray(keys, np.int32)
        if info.pixel_size_m:
            inst["x_pixel_size"] = info.pixel_size_m * 1e3
            inst["x_pixel_size"].attrs["units"] = "mm"
        sample = tomo.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["rotation_angle"] = np.asarray(angles, np.float64)
        sample["rotation_angle"].attrs["units"] = "deg"
        group = tomo.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        group["data"] = h5py.SoftLink("/entry1/pco1_hw_hdf/data")
        group["rotation_angle"] = h5py.SoftLink("/entry1/tomo_entry/sample/rotation_angle")
        group["image_key"] = h5py.SoftLink("/entry1/tomo_entry/instrument/detector/image_key")


def write_native_formats(
    outdir: str | os.PathLike, *, progress: Callable[[float, str], None] | None = None
) -> dict[str, Any]:
    """Convert the twin in ``outdir`` (its ``manifest.yaml``) into ``outdir/native/``.

    Returns
    -------
    dict
        ``files`` (paths relative to ``outdir``), ``bin`` (per file: events, frames, bytes).
    """
    root = Path(outdir)
    manifest = yaml.safe_load((root / "manifest.yaml").read_text(encoding="utf-8"))
    native = root / "native"
    entries, calibrations, written, stats = [], {}, [], {}
    todo = manifest["files"]
    for i, entry in enumerate(todo):
        if progress:
            progress(i / max(len(todo), 1), f"native formats: {entry['path']}")
        src = root / entry["path"]
        stem = Path(entry["path"]).stem
        if entry["kind"] == "xcs_events":
            cal_name = f"{entry['cell']}-calibration"
            cal_dir = native / "calibration" / entry["cell"]
            bin_rel = f"xcsi/{stem}.bin"
            (native / "xcsi").mkdir(parents=True, exist_ok=True)
            stats[bin_rel] = _bin_and_calibration(src, native / bin_rel, cal_dir)
            calibrations[cal_name] = {"name": cal_name,
                                      "folder": f"calibration/{entry['cell']}"}  # fmt: skip
            entries.append({**entry, "path": bin_rel, "kind": "xcs_frames",
                            "calibration": cal_name})  # fmt: skip
            hxt_rel = f"xcsi/{stem}.hxt"
            _hxt(src, native / hxt_rel)
            entries.append({**entry, "path": hxt_rel, "kind": "xcs_spectra"})
            written += [bin_rel, hxt_rel]
        elif entry["kind"] == "xct_projections":
            nxs_rel = f"xct/{stem}.nxs"
            (native / "xct").mkdir(parents=True, exist_ok=True)
            _diamond_nxtomo(src, native / nxs_rel)
            entries.append({**entry, "path": nxs_rel})
            written.append(nxs_rel)
        else:
            (native / src.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, native / entry["path"])
            entries.append(entry)
            written.append(entry["path"])
    for cal in calibrations.values():
        written += [f"{cal['folder']}/{n}.txt" for n in ("gradients", "intercepts", "thresholds")]
    new_manifest = {**manifest, "calibrations": list(calibrations.values()), "files": entries}
    with atomic_output(native / "manifest.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(new_manifest, sort_keys=False), encoding="utf-8")
    written.append("manifest.yaml")
    return {"files": [f"native/{p}" for p in written], "bin": stats}
