"""Result files in standard formats for other tools.

- ``nxs``: NeXus, one ``NXdata`` group per map, volume or spectrum (``signal`` + ``axes``
  with ``units``), so h5web, silx and DAWN plot them directly; ``/entry@default`` points at
  the main one.
- ``hxt``: per-pixel spectra as HEXITEC ``.hxt`` v3 (opens in the HEXITEC software).
- ``tif``: the main map (Li stoichiometry, lateral porosity) or volume as a float32 (multi-page)
  TIFF.
- ``csv``: every detector-grid map of the result as one table with columns ``row, col`` and
  one column per map (empty cell = NaN, outside the mask), or ``region, row, col, porosity``
  for lateral porosity maps.

Which exports a result offers depends on what its HDF5 file holds (:func:`export_formats`).
Layouts: ``docs/formats.md``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, open_hdf5
from analysis_engine.io.hexitec_native import write_hxt

__all__ = ["EXPORT_FORMATS", "export_formats", "export_result", "write_nxdata"]

EXPORT_FORMATS = ("nxs", "hxt", "tif", "csv")
#: the map a TIFF export holds, first present wins
MAIN_MAPS = (
    "li_stoichiometry",
    "lateral_porosity",
    "entry/reconstruction/data",
    "s_parameter",
    "pore_mask",
    "flux_magnitude",
    "concentration",
)
_SUFFIX_UNITS = {"_kev": "keV", "_um": "um", "_mm": "mm", "_deg": "deg", "_au": "a.u."}
_VOLUME_LIMIT = 512 * 1024 * 1024  # bytes; larger volumes are copied slab by slab


def _units(name: str, ds: h5py.Dataset) -> str:
    value = ds.attrs.get("units")
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value
    for suffix, units in _SUFFIX_UNITS.items():
        if name.endswith(suffix) or name.endswith(suffix + "_sigma"):
            return units
    return ""


def _datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}
    f.visititems(
        lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None
    )
    return found


def _numeric(ds: h5py.Dataset) -> bool:
    return ds.dtype.kind in "fiub" and ds.size > 1


def export_formats(path: str | os.PathLike) -> list[str]:
    """The export formats a result file supports (subset of :data:`EXPORT_FORMATS`)."""
    with open_hdf5(path, what="result file") as f:
        sets = _datasets(f)
        has_arrays = any(_numeric(d) for d in sets.values())
    formats = []
    if has_arrays:
        formats.append("nxs")
    if "pixel_histograms" in sets and "energy_bins" in sets:
        formats.append("hxt")
    if any(name in sets for name in MAIN_MAPS):
        formats.append("tif")
    if "li_stoichiometry" in sets or "lateral_porosity" in sets or "s_parameter" in sets:
        formats.append("csv")
    return formats


def export_result(src: str | os.PathLike, fmt: str, dst: str | os.PathLike) -> dict[str, Any]:
    """Convert the result HDF5 ``src`` to ``fmt`` at ``dst`` (atomically).

    Returns
    -------
    dict
        ``format``, ``datasets`` (what was exported).

    Raises
    ------
    EngineInputError
        Unknown format or one this result cannot give (e.g. ``hxt`` without spectra).
    """
    if fmt not in EXPORT_FORMATS:
        raise EngineInputError(f"unknown export format {fmt!r}; expected {EXPORT_FORMATS}")
    offered = export_formats(src)
    if fmt not in offered:
        raise EngineInputError(
            f"{Path(src).name} cannot be exported as {fmt}: it offers {', '.join(offered)}"
        )
    with open_hdf5(src, what="result file") as f:
        sets = _datasets(f)
        if fmt == "hxt":
            write_hxt(dst, sets["energy_bins"][()], sets["pixel_histograms"][()],
                      prefix=Path(src).stem)  # fmt: skip
            return {"format": fmt, "datasets": ["pixel_histograms"]}
        if fmt == "tif":
            from analysis_engine.io.tiffstack import write_tiff_stack

            name = next(n for n in MAIN_MAPS if n in sets)
            write_tiff_stack(dst, np.asarray(sets[name][()], dtype=np.float32))
            return {"format": fmt, "datasets": [name]}
        if fmt == "csv":
            return {"format": fmt, "datasets": _write_csv(sets, dst)}
        return {"format": fmt, "datasets": _write_nexus(f, sets, dst)}


def _write_csv(sets: dict[str, h5py.Dataset], dst: str | os.PathLike) -> list[str]:
    if "lateral_porosity" in sets:
        maps = np.asarray(sets["lateral_porosity"][()], dtype=np.float64)
        region, row, col = np.indices(maps.shape).reshape(3, -1)
        columns = {"region": region + 1, "row": row, "col": col, "porosity": maps.ravel()}
        names = ["lateral_porosity"]
    else:
        shape = sets["li_stoichiometry" if "li_stoichiometry" in sets else "s_parameter"].shape
        names = sorted(n for n, d in sets.items() if d.ndim == 2 and d.shape == shape
                       and "/" not in n and d.dtype.kind in "fiub")  # fmt: skip
        row, col = np.indices(shape).reshape(2, -1)
        columns = {"row": row, "col": col}
        columns.update({n: np.asarray(sets[n][()], dtype=np.float64).ravel() for n in names})
    with atomic_output(dst) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        arrays = list(columns.values())
        for i in range(len(arrays[0])):
            writer.writerow(
                ["" if isinstance(a[i], float) and not np.isfinite(a[i]) else
                 (repr(float(a[i])) if a.dtype.kind == "f" else int(a[i])) for a in arrays]
            )  # fmt: skip
    return names


def write_nxdata(
    group: h5py.Group,
    signal_name: str,
    signal: np.ndarray | h5py.Dataset,
    axes: list[tuple[str, np.ndarray, str]],
    *,
    signal_units: str = "",
    long_name: str | None = None,
) -> h5py.Group:
    """Fill ``group`` as an ``NXdata``: ``signal`` with one axis per dimension.

    ``axes`` lists ``(name, values, units)`` in dimension order; each ``values`` has the
    length of its dimension. Large signals are copied slab by slab.
    """
    group.attrs["NX_class"] = "NXdata"
    group.attrs["signal"] = signal_name
    group.attrs["axes"] = [a[0] for a in axes]
    shape = tuple(signal.shape)
    if len(axes) != len(shape):
        raise EngineInputError(f"{signal_name}: {len(axes)} axes for a {len(shape)}-D signal")
    chunks = (1, *shape[1:]) if len(shape) == 3 else True
    ds = group.create_dataset(signal_name, shape=shape, dtype=signal.dtype, chunks=chunks,
                              compression="gzip" if np.prod(shape) >= 1024 else None)  # fmt: skip
    if len(shape) == 3:
        for z in range(0, shape[0], 16):
            ds[z : z + 16] = signal[z : z + 16]
    else:
        ds[()] = signal[()] if isinstance(signal, h5py.Dataset) else signal
    if signal_units:
        ds.attrs["units"] = signal_units
    ds.attrs["long_name"] = long_name or signal_name
    for i, (name, values, units) in enumerate(axes):
        if len(values) != shape[i]:
            raise EngineInputError(f"axis {name} has {len(values)} values, dimension {shape[i]}")
        axis = group.create_dataset(name, data=np.asarray(values))
        if units:
            axis.attrs["units"] = units
        group.attrs[f"{name}_indices"] = i
    return group


def _write_nexus(f: h5py.File, sets: dict[str, h5py.Dataset], dst) -> list[str]:
    voxel = None
    recon = sets.get("entry/reconstruction/data")
    if recon is not None:
        value = recon.attrs.get("voxel_size_um")
        voxel = float(value) if value is not None and np.isfinite(value) else None
    energy = sets["energy_bins"][()] if "energy_bins" in sets else None
    written: list[str] = []
    with atomic_output(dst) as tmp, h5py.File(tmp, "w") as out:
        entry = out.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        for key, value in f.attrs.items():
            entry.attrs[f"correli_{key}"] = value
        for name, ds in sets.items():
            if not _numeric(ds) or ds.ndim > 3 or name == "energy_bins":
                continue
            label = name.replace("/", "_")
            units = _units(name.rsplit("/", 1)[-1], ds)
            if ds.ndim == 1 and energy is not None and ds.shape == energy.shape:
                axes = [("energy", energy, "keV")]
            elif ds.ndim == 3 and name == "pixel_histograms" and energy is not None:
                axes = [("row", np.arange(ds.shape[0]), "pixel"),
                        ("col", np.arange(ds.shape[1]), "pixel"), ("energy", energy, "keV")]  # fmt: skip
            elif ds.ndim == 3:
                step, units_xyz = (voxel, "um") if voxel else (1.0, "voxel")
                axes = [
                    (a, np.arange(n) * step, units_xyz)
                    for a, n in zip("zyx", ds.shape, strict=True)
                ]
            elif ds.ndim == 2:
                axes = [("row", np.arange(ds.shape[0]), "pixel"),
                        ("col", np.arange(ds.shape[1]), "pixel")]  # fmt: skip
            else:
                axes = [("index", np.arange(ds.shape[0]), "")]
            write_nxdata(entry.create_group(label), name.rsplit("/", 1)[-1], ds, axes,
                         signal_units=units)  # fmt: skip
            written.append(name)
        if not written:
            raise EngineInputError("the result holds no array to export")
        main = next((n for n in MAIN_MAPS if n in written), written[0])
        out.attrs["default"] = "entry"
        entry.attrs["default"] = main.replace("/", "_")
    return written
