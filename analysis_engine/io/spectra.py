"""Per-pixel spectra written by the ``events`` command and read by the ``compton`` stage.

Layout (``docs/formats.md``): ``/energy_bins`` (n_bins,) bin centres in keV,
``/pixel_histograms`` (rows, cols, n_bins) uint32 indexed [row, col, bin],
``/summed_histogram`` (n_bins,) uint64, optional ``/bad_pixels`` (rows, cols) uint8 (nonzero:
pixel masked during event processing). Root attrs carry the processing options
(``bin_width_kev``, ``range_kev``, ``charge_sharing``, ...) and the summary as JSON text.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, open_hdf5, require_dataset, write_json_attrs

__all__ = [
    "add_instrument",
    "inspect_spectra",
    "read_instrument",
    "read_resolution_map",
    "read_spectra",
    "write_spectra",
]


def write_spectra(
    path: str | os.PathLike,
    energy_bins_kev: np.ndarray,
    pixel_histograms: np.ndarray,
    *,
    attrs: Mapping[str, Any] | None = None,
    bad_pixels: np.ndarray | None = None,
    instrument: Mapping[str, Any] | None = None,
    resolution_fwhm_kev: np.ndarray | None = None,
    diagnostics: Mapping[str, Any] | None = None,
) -> None:
    """Write per-pixel spectra atomically (gzip level 1 + shuffle, one chunk per detector row).

    Parameters
    ----------
    energy_bins_kev
        (n_bins,) bin centres in keV.
    pixel_histograms
        (rows, cols, n_bins) counts; stored as uint32.
    attrs
        Root attributes; dicts and lists of strings are stored as JSON text.
    bad_pixels
        Optional (rows, cols) mask of pixels ignored during processing.
    instrument
        Optional attributes of an ``/instrument`` group (the pinhole geometry keys).
    resolution_fwhm_kev
        Optional (rows, cols) detector FWHM at the Compton line, keV (NaN = unknown).
    diagnostics
        Optional ``/diagnostics`` group: arrays become datasets, other values attributes
        (dicts and lists as JSON text), e.g. the occupancy and pile-up diagnostics of
        ``events``.
    """
    bins = np.asarray(energy_bins_kev, dtype=np.float64)
    cube = np.asarray(pixel_histograms)
    if cube.ndim != 3 or cube.shape[2] != bins.shape[0]:
        raise EngineInputError(
            f"pixel_histograms shape {cube.shape} does not match {bins.shape[0]} energy bins"
        )
    if cube.dtype != np.uint32:
        if cube.size and (cube.min() < 0 or cube.max() > np.iinfo(np.uint32).max):
            raise EngineInputError("histogram counts do not fit uint32")
        cube = cube.astype(np.uint32)
    rows, cols, n_bins = cube.shape
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("energy_bins", data=bins)
        ds = f.create_dataset(
            "pixel_histograms",
            shape=cube.shape,
            dtype=np.uint32,
            chunks=(1, cols, n_bins) if n_bins and rows and cols else None,
            compression="gzip" if n_bins and rows and cols else None,
            compression_opts=1 if n_bins and rows and cols else None,
            shuffle=bool(n_bins and rows and cols),
        )
        if ds.chunks is not None:
            _write_rows_compressed(ds, cube)
        f.create_dataset("summed_histogram", data=cube.sum(axis=(0, 1), dtype=np.uint64))
        if bad_pixels is not None:
            f.create_dataset("bad_pixels", data=np.asarray(bad_pixels, dtype=np.uint8))
        f.attrs["rows"], f.attrs["cols"] = rows, cols
        write_json_attrs(f, dict(attrs or {}))
        if instrument:
            write_json_attrs(f.create_group("instrument"), dict(instrument))
        if resolution_fwhm_kev is not None:
            f.create_dataset(
                "resolution_fwhm_kev", data=np.asarray(resolution_fwhm_kev, dtype=np.float32)
            )
        if diagnostics:
            group = f.create_group("diagnostics")
            for name, value in diagnostics.items():
                if isinstance(value, np.ndarray):
                    group.create_dataset(name, data=value)
            write_json_attrs(
                group,
                {
                    k: v
                    for k, v in diagnostics.items()
                    if not isinstance(v, np.ndarray) and v is not None
                },
            )


def _shuffle_deflate(row: np.ndarray) -> bytes:
    """HDF5's shuffle + deflate(level 1) filters applied by hand to one (cols, n_bins) chunk."""
    data = np.ascontiguousarray(row, dtype="<u4").view(np.uint8).reshape(-1, 4).T.tobytes()
    return zlib.compress(data, 1)


def _write_rows_compressed(ds: h5py.Dataset, cube: np.ndarray) -> None:
    # zlib releases the GIL, so the detector rows compress in parallel; the bytes are exactly
    # what HDF5's own filter pipeline would store, so any HDF5 reader opens the file.
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for r, data in enumerate(pool.map(_shuffle_deflate, cube)):
            ds.id.write_direct_chunk((r, 0, 0), data, filter_mask=0)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and (value[:1] in ("{", "[") or value == "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_spectra(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read spectra written by :func:`write_spectra` (or any file with that layout).

    Returns
    -------
    energy_bins_kev : numpy.ndarray
        (n_bins,) float64 bin centres, keV.
    pixel_histograms : numpy.ndarray
        (rows, cols, n_bins) uint32.
    attrs : dict
        Root attributes (JSON text decoded), plus ``bad_pixels`` ((rows, cols) bool array)
        and ``resolution_fwhm_kev`` ((rows, cols) float64) when the file has them.

    Raises
    ------
    EngineInputError
        Missing datasets, mismatched shapes, non-increasing energy bins, truncated file.
    """
    with open_hdf5(path, what="spectra file") as f:
        _check_layout(f)
        try:
            bins = f["energy_bins"][()].astype(np.float64)
            cube = f["pixel_histograms"][()]
            bad = f["bad_pixels"][()].astype(bool) if "bad_pixels" in f else None
            fwhm = (
                f["resolution_fwhm_kev"][()].astype(np.float64)
                if "resolution_fwhm_kev" in f
                else None
            )
        except OSError as exc:
            raise EngineInputError(f"spectra file cannot be read (truncated?): {exc}") from None
        attrs = {key: _decode(value) for key, value in f.attrs.items()}
    if cube.dtype != np.uint32:
        cube = cube.astype(np.uint32)
    if bad is not None:
        attrs["bad_pixels"] = bad
    if fwhm is not None:
        attrs["resolution_fwhm_kev"] = fwhm
    return bins, cube, attrs


def add_instrument(
    path: str | os.PathLike,
    *,
    instrument: Mapping[str, Any] | None = None,
    resolution_fwhm_kev: np.ndarray | None = None,
) -> None:
    """Add an ``/instrument`` group (geometry attributes) and ``/calibration/fwhm_kev`` (the
    per-pixel FWHM at the Compton line) to an existing event or spectra file."""
    with h5py.File(path, "a") as f:
        if instrument:
            group = f.require_group("instrument")
            write_json_attrs(group, dict(instrument))
        if resolution_fwhm_kev is not None:
            group = f.require_group("calibration")
            if "fwhm_kev" in group:
                del group["fwhm_kev"]
            group.create_dataset("fwhm_kev", data=np.asarray(resolution_fwhm_kev, np.float32))


def read_resolution_map(path: str | os.PathLike) -> np.ndarray | None:
    """Per-pixel FWHM at the Compton line, keV, from ``/calibration/fwhm_kev`` of an event file
    (or ``/resolution_fwhm_kev`` of a spectra file), if present."""
    with open_hdf5(path, what="HDF5 file") as f:
        for name in ("calibration/fwhm_kev", "resolution_fwhm_kev"):
            if isinstance(f.get(name), h5py.Dataset):
                return f[name][()].astype(np.float64)
    return None


def read_instrument(path: str | os.PathLike) -> dict[str, Any] | None:
    """Attributes of the ``/instrument`` group of an HDF5 spectra or event file, if any."""
    with open_hdf5(path, what="HDF5 file") as f:
        group = f.get("instrument")
        if not isinstance(group, h5py.Group):
            return None
        return {key: _decode(value) for key, value in group.attrs.items()}


def _check_layout(f: h5py.File) -> tuple[int, int, int]:
    name = os.path.basename(f.filename)
    bins = require_dataset(f, "energy_bins", what="spectra file")
    cube = require_dataset(f, "pixel_histograms", what="spectra file")
    if bins.ndim != 1:
        raise EngineInputError(f"{name}: /energy_bins must be 1-D, has shape {bins.shape}")
    if cube.ndim != 3 or cube.shape[2] != bins.shape[0]:
        raise EngineInputError(
            f"{name}: /pixel_histograms has shape {cube.shape}; expected (rows, cols, "
            f"{bins.shape[0]}) to match /energy_bins"
        )
    if cube.dtype.kind not in "ui":
        raise EngineInputError(
            f"{name}: /pixel_histograms has dtype {cube.dtype}; expected integer counts"
        )
    if bins.shape[0] > 1:
        edges = bins[:2]
        if not edges[1] > edges[0]:
            raise EngineInputError(f"{name}: /energy_bins is not increasing")
    return cube.shape


def inspect_spectra(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap validation of a spectra file for uploads.

    Returns
    -------
    dict
        ``rows``, ``cols``, ``n_bins``, ``energy_min_kev``, ``energy_max_kev``,
        ``bin_width_kev``, ``charge_sharing`` (if recorded).
    """
    with open_hdf5(path, what="spectra file") as f:
        rows, cols, n_bins = _check_layout(f)
        try:
            bins = f["energy_bins"][()]
        except OSError as exc:
            raise EngineInputError(f"spectra file cannot be read (truncated?): {exc}") from None
        if n_bins > 1 and not np.all(np.diff(bins) > 0):
            raise EngineInputError(f"{os.path.basename(f.filename)}: /energy_bins not increasing")
        sharing = f.attrs.get("charge_sharing")
        return {
            "rows": int(rows),
            "cols": int(cols),
            "n_bins": int(n_bins),
            "energy_min_kev": float(bins[0]) if n_bins else None,
            "energy_max_kev": float(bins[-1]) if n_bins else None,
            "bin_width_kev": float(bins[1] - bins[0]) if n_bins > 1 else None,
            "charge_sharing": _decode(sharing) if sharing is not None else None,
        }
