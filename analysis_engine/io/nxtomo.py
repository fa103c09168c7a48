"""NXtomo (NeXus tomography) projections in, CorreLi reconstructions out.

The NXtomo entry is found by content, not by a fixed path: the first group (up to three
levels deep) whose ``NX_class`` is ``NXentry`` or ``NXsubentry`` and whose ``definition`` is
``NXtomo`` -- ``/entry`` (NeXus application definition, ESRF's ``nxtomo`` package, CorreLi's
own writer) or a subentry such as Diamond's ``/entry1/tomo_entry``. Inside it the images are
``instrument/detector/data`` or ``data/data`` (n, rows, cols), ``image_key`` beside either
(0 projection, 1 flat, 2 dark, 3 invalid, -1 alignment; the last two are skipped), and
``sample/rotation_angle`` or ``data/rotation_angle`` (n,) with a ``units`` attribute of
degrees or radians (degrees when absent). ``instrument/detector/x_pixel_size`` is read with
its ``units`` (metres when absent). Soft and external links are followed; a dangling one is
named in the error. The readers only ever hold a band of detector rows (a chunk of sinograms)
in memory. Full layout: ``docs/formats.md``.

Reconstructions are written to ``/entry/reconstruction/data`` (slices, N, N) float32, one slice
chunk at a time, with attrs ``center_of_rotation`` (detector px) and ``voxel_size_um``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, open_hdf5, write_json_attrs
from analysis_engine.io.tiffstack import TiffScan, find_tiff_scan

__all__ = [
    "NXtomoInfo",
    "DATA_PATH",
    "IMAGE_KEY_PATH",
    "ANGLE_PATH",
    "PIXEL_SIZE_PATH",
    "RECONSTRUCTION_PATH",
    "find_nxtomo_entry",
    "read_nxtomo_info",
    "inspect_nxtomo",
    "read_flats_darks",
    "read_sinograms",
    "write_nxtomo",
    "ReconstructionWriter",
    "read_reconstruction",
    "read_reconstruction_attrs",
    "inspect_reconstruction",
]

DATA_PATH = "/entry/data/data"
IMAGE_KEY_PATH = "/entry/data/image_key"
ANGLE_PATH = "/entry/data/rotation_angle"
PIXEL_SIZE_PATH = "/entry/instrument/detector/x_pixel_size"
RECONSTRUCTION_PATH = "/entry/reconstruction/data"
#: ``NXtomoInfo.data_path`` of a TIFF scan folder (projections/, flats/, darks/, angles.txt)
TIFF_SCAN = "tiff-scan"

# A scan must span 180 deg (or 360 deg) up to this many angular steps.
_COVERAGE_TOLERANCE_STEPS = 1.5


@dataclass(frozen=True)
class NXtomoInfo:
    """What an NXtomo file holds (no pixel data).

    ``n_rows`` is the number of detector rows = reconstructable slices; ``angles_deg`` are the
    projections' angles in file order; ``scan_range_deg`` is 180 or 360.
    """

    path: str
    n_images: int
    n_rows: int
    n_cols: int
    dtype: str
    projection_indices: np.ndarray
    flat_indices: np.ndarray
    dark_indices: np.ndarray
    angles_deg: np.ndarray
    scan_range_deg: int
    pixel_size_m: float | None
    data_path: str = DATA_PATH
    entry_path: str = "/entry"

    @property
    def n_projections(self) -> int:
        return int(self.projection_indices.size)


def _name(path: str | os.PathLike) -> str:
    return Path(path).name


_ANGLE_UNITS = {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "°": 1.0,
                "rad": 180.0 / np.pi, "radian": 180.0 / np.pi, "radians": 180.0 / np.pi}  # fmt: skip
_LENGTH_UNITS = {"m": 1.0, "metre": 1.0, "meter": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6,
                 "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "micrometer": 1e-6, "nm": 1e-9}  # fmt: skip


def _text_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def _is_nxtomo(group: h5py.Group) -> bool:
    if _text_value(group.attrs.get("NX_class", "")) not in ("NXentry", "NXsubentry"):
        return False
    definition = group.get("definition")
    if isinstance(definition, h5py.Dataset):
        return _text_value(definition[()]) == "NXtomo"
    return _text_value(group.attrs.get("definition", "")) == "NXtomo"


def find_nxtomo_entry(f: h5py.File) -> str:
    """Path of the NXtomo entry of an open file (found by ``NX_class`` and ``definition``).

    Falls back to ``/entry`` when it holds ``data/data`` without a definition (older CorreLi
    files). Links are not followed while searching, so a link cycle cannot trap the search.

    Raises
    ------
    EngineInputError
        No NXtomo entry anywhere in the first three levels.
    """
    found: list[str] = []

    def walk(group: h5py.Group, depth: int) -> None:
        for name in group:
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                continue
            obj = group.get(name)
            if not isinstance(obj, h5py.Group):
                continue
            if _is_nxtomo(obj):
                found.append(obj.name)
            elif depth < 3:
                walk(obj, depth + 1)

    walk(f, 1)
    if found:
        return sorted(found, key=lambda p: (p.count("/"), p))[0]
    if isinstance(f.get("entry/data/data"), h5py.Dataset):
        return "/entry"
    raise EngineInputError(
        f"{Path(f.filename).name} has no NXtomo entry: no group with NX_class NXentry or "
        "NXsubentry and definition 'NXtomo' (and no /entry/data/data)"
    )


def _resolve(f: h5py.File, path: str, name: str, depth: int = 0) -> h5py.Dataset | None:
    """The dataset at ``path``, following links; None if absent; a clear error if dangling."""
    if depth > 8:
        raise EngineInputError(f"NXtomo file {name}: links around {path} form a cycle")
    parts = [p for p in path.split("/") if p]
    current = "/"
    group: h5py.Group = f
    for i, part in enumerate(parts):
        link = group.get(part, getlink=True)
        if link is None:
            return None
        here = current.rstrip("/") + "/" + part
        try:
            obj = group.get(part)
        except (KeyError, OSError, ValueError):
            obj = None
        if obj is None:
            if isinstance(link, h5py.ExternalLink):
                target = f"{link.filename}:{link.path}"
                raise EngineInputError(
                    f"NXtomo file {name}: {here} is an external link to {target}, which cannot "
                    "be opened (copy the linked file next to this one, or export a single file)"
                )
            target = getattr(link, "path", "?")
            if isinstance(link, h5py.SoftLink) and target.startswith("/") and target != path:
                _resolve(f, target, name, depth + 1)  # names a broken link further along
            raise EngineInputError(
                f"NXtomo file {name}: {here} is a link to {target}, which does not exist "
                "(dangling link)"
            )
        if i == len(parts) - 1:
            return obj if isinstance(obj, h5py.Dataset) else None
        if not isinstance(obj, h5py.Group):
            return None
        group, current = obj, here
    return None


def _first(f: h5py.File, entry: str, candidates: tuple[str, ...], name: str):
    for rel in candidates:
        path = f"{entry.rstrip('/')}/{rel}"
        ds = _resolve(f, path, name)
        if ds is not None:
            return path, ds
    return None, None


def _unit_factor(ds: h5py.Dataset, table: dict[str, float], default: str, what: str, name: str):
    units = _text_value(ds.attrs.get("units", default)) or default
    factor = table.get(units) or table.get(units.lower())
    if factor is None:
        raise EngineInputError(
            f"NXtomo file {name}: {what} has units {units!r}; expected one of "
            f"{', '.join(sorted(table))}"
        )
    return factor, units


def read_nxtomo_info(path: str | os.PathLike) -> NXtomoInfo:
    """Read and validate the metadata of an NXtomo file (any layout in the module docstring).

    Raises
    ------
    EngineInputError
        No NXtomo entry; missing or dangling ``data``, ``image_key`` or ``rotation_angle``;
        lengths that do not match; no projections or no flats; angles that do not cover
        180 deg or 360 deg; unknown units.
    """
    name = _name(path)
    if find_tiff_scan(path) is not None:
        scan = TiffScan(path)
        return _validated_info(path, name, scan.image_key, scan.angles_deg, scan.shape,
                               str(scan.dtype), None, TIFF_SCAN, "")  # fmt: skip
    with open_hdf5(path, what="NXtomo file") as f:
        entry = find_nxtomo_entry(f)
        data_path, data = _first(f, entry, ("instrument/detector/data", "data/data"), name)
        if data is None:
            raise EngineInputError(
                f"NXtomo file {name}: entry {entry} has no image stack (instrument/detector/data "
                "or data/data)"
            )
        if data.ndim != 3 or min(data.shape) == 0:
            raise EngineInputError(
                f"NXtomo file {name}: {data_path} must be (images, rows, cols), got {data.shape}"
            )
        key_candidates = ("instrument/detector/image_key", "data/image_key",
                          "instrument/detector/image_key_control")  # fmt: skip
        _, keys = _first(f, entry, key_candidates, name)
        if keys is None:
            raise EngineInputError(
                f"NXtomo file {name} has no image_key (in {entry}/instrument/detector or "
                f"{entry}/data): cannot tell flats and darks from projections"
            )
        _, angles = _first(f, entry, ("sample/rotation_angle", "data/rotation_angle"), name)
        if angles is None:
            raise EngineInputError(
                f"NXtomo file {name} has no rotation angles ({entry}/sample/rotation_angle or "
                f"{entry}/data/rotation_angle)"
            )
        to_deg, _ = _unit_factor(angles, _ANGLE_UNITS, "degree", "rotation_angle", name)
        image_key = np.asarray(keys[()]).ravel()
        angle_values = np.asarray(angles[()], dtype=np.float64).ravel() * to_deg
        _, pixel = _first(f, entry, ("instrument/detector/x_pixel_size",), name)
        pixel_size_m = None
        if pixel is not None:
            to_m, _ = _unit_factor(pixel, _LENGTH_UNITS, "m", "x_pixel_size", name)
            value = float(np.asarray(pixel[()]).ravel()[0]) * to_m
            if np.isfinite(value) and value > 0:
                pixel_size_m = value
        shape, dtype = data.shape, str(data.dtype)
    return _validated_info(path, name, image_key, angle_values, shape, dtype, pixel_size_m,
                           data_path, entry)  # fmt: skip


def _validated_info(path, name, image_key, angle_values, shape, dtype, pixel_size_m, data_path,
                    entry) -> NXtomoInfo:  # fmt: skip
    n_images, n_rows, n_cols = (int(v) for v in shape)
    if image_key.size != n_images:
        raise EngineInputError(
            f"NXtomo file {name}: image_key has {image_key.size} entries but the data has "
            f"{n_images} images; they must match"
        )
    if angle_values.size != n_images:
        raise EngineInputError(
            f"NXtomo file {name}: rotation_angle has {angle_values.size} entries but the data "
            f"has {n_images} images; they must match"
        )
    unknown = sorted(set(np.unique(image_key).tolist()) - {-1, 0, 1, 2, 3})
    if unknown:
        raise EngineInputError(
            f"NXtomo file {name}: image_key values {unknown} are not 0 (projection), 1 (flat), "
            "2 (dark), 3 (invalid) or -1 (alignment)"
        )
    projections = np.flatnonzero(image_key == 0)
    flats = np.flatnonzero(image_key == 1)
    darks = np.flatnonzero(image_key == 2)
    if projections.size < 2:
        raise EngineInputError(f"NXtomo file {name} has {projections.size} projections")
    if flats.size == 0:
        raise EngineInputError(
            f"NXtomo file {name} has no flat fields (image_key 1): cannot normalise projections"
        )
    proj_angles = angle_values[projections]
    if not np.all(np.isfinite(proj_angles)):
        raise EngineInputError(f"NXtomo file {name}: projection angles contain NaN")
    scan_range = _scan_range(proj_angles, name)
    return NXtomoInfo(
        path=str(path),
        n_images=n_images,
        n_rows=n_rows,
        n_cols=n_cols,
        dtype=dtype,
        projection_indices=projections,
        flat_indices=flats,
        dark_indices=darks,
        angles_deg=proj_angles,
        scan_range_deg=scan_range,
        pixel_size_m=pixel_size_m,
        data_path=data_path,
        entry_path=entry,
    )


def _scan_range(angles_deg: np.ndarray, name: str) -> int:
    ordered = np.sort(angles_deg)
    steps = np.diff(ordered)
    step = float(np.median(steps)) if steps.size else 0.0
    if step <= 0:
        raise EngineInputError(f"NXtomo file {name}: projection angles are all equal")
    span = float(ordered[-1] - ordered[0]) + step  # the last step closes the range
    tolerance = _COVERAGE_TOLERANCE_STEPS * step
    if span >= 360.0 - tolerance:
        return 360
    if span >= 180.0 - tolerance:
        return 180
    raise EngineInputError(
        f"NXtomo file {name}: projection angles span {span - step:.1f} deg in steps of "
        f"{step:.3g} deg; a parallel-beam scan needs 180 deg (or 360 deg for a half-acquisition "
        "scan)"
    )


def inspect_nxtomo(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap upload validation of an NXtomo file; returns JSON-ready facts.

    Reads the metadata and the flats and darks (not the projections) and checks that the flats
    are finite and brighter than the darks.
    """
    info = read_nxtomo_info(path)
    flat, dark = read_flats_darks(path, info=info)
    return {
        "shape": [info.n_images, info.n_rows, info.n_cols],
        "dtype": info.dtype,
        "projections": info.n_projections,
        "flats": int(info.flat_indices.size),
        "darks": int(info.dark_indices.size),
        "angle_range_deg": [float(info.angles_deg.min()), float(info.angles_deg.max())],
        "scan_range_deg": info.scan_range_deg,
        "pixel_size_m": info.pixel_size_m,
        "entry": info.entry_path,
        "data_path": info.data_path,
        "mean_flat_counts": float(flat.mean()),
        "mean_dark_counts": float(dark.mean()),
    }


def _check_rows(rows: tuple[int, int] | None, n_rows: int, name: str) -> tuple[int, int]:
    if rows is None:
        return 0, n_rows
    start, stop = int(rows[0]), int(rows[1])
    if not 0 <= start < stop <= n_rows:
        raise EngineInputError(
            f"slice range {start}:{stop} lies outside {name}, which has detector rows 0:{n_rows}"
        )
    return start, stop


def _contiguous_runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Split sorted image indices into (file_start, file_stop, output_offset) runs."""
    runs = []
    if indices.size == 0:
        return runs
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    offset = 0
    for part in np.split(indices, breaks):
        runs.append((int(part[0]), int(part[-1]) + 1, offset))
        offset += part.size
    return runs


def _mean_images(data: h5py.Dataset, indices: np.ndarray, rows: tuple[int, int]) -> np.ndarray:
    total = np.zeros((rows[1] - rows[0], data.shape[2]), dtype=np.float64)
    for start, stop, _ in _contiguous_runs(indices):
        block = data[start:stop, rows[0] : rows[1], :]
        total += block.sum(axis=0, dtype=np.float64)
    return (total / max(indices.size, 1)).astype(np.float32)


@contextlib.contextmanager
def _images(path: str | os.PathLike, info: NXtomoInfo) -> Iterator[Any]:
    """The image stack: the HDF5 dataset, or a TIFF scan folder read image by image."""
    if info.data_path == TIFF_SCAN:
        yield TiffScan(path)
        return
    with open_hdf5(path, what="NXtomo file") as f:
        yield f[info.data_path]


def read_flats_darks(
    path: str | os.PathLike,
    *,
    rows: tuple[int, int] | None = None,
    info: NXtomoInfo | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean flat and mean dark field over detector rows ``rows`` (start, stop).

    Returns
    -------
    flat, dark : ndarray, shape (stop - start, n_cols), float32
        Counts. ``dark`` is zeros when the file has no darks.

    Raises
    ------
    EngineInputError
        NaN/infinite flats, or flats not brighter than the darks over most of the detector.
    """
    info = info or read_nxtomo_info(path)
    name = _name(path)
    rows = _check_rows(rows, info.n_rows, name)
    with _images(path, info) as data:
        flat = _mean_images(data, info.flat_indices, rows)
        if info.dark_indices.size:
            dark = _mean_images(data, info.dark_indices, rows)
        else:
            dark = np.zeros_like(flat)
    if not np.all(np.isfinite(flat)) or not np.all(np.isfinite(dark)):
        raise EngineInputError(f"NXtomo file {name}: the flat or dark fields contain NaN/inf")
    bad = float(np.mean(flat - dark <= 0))
    if bad > 0.01:
        raise EngineInputError(
            f"NXtomo file {name}: the flat field is zero or not brighter than the dark field in "
            f"{bad:.0%} of the detector pixels (rows {rows[0]}:{rows[1]}): the flats are unusable"
        )
    return flat, dark


def read_sinograms(
    path: str | os.PathLike,
    *,
    rows: tuple[int, int] | None = None,
    info: NXtomoInfo | None = None,
    block_images: int = 256,
) -> np.ndarray:
    """Raw projections of detector rows ``rows`` as sinograms.

    Only ``(n_projections, stop - start, n_cols)`` values are held at once, read ``block_images``
    images at a time, so memory is bounded by the chunk of rows.

    Returns
    -------
    ndarray, shape (stop - start, n_projections, n_cols), float32
        Counts, in the file's projection order (``info.angles_deg``).
    """
    info = info or read_nxtomo_info(path)
    rows = _check_rows(rows, info.n_rows, _name(path))
    n_sel = rows[1] - rows[0]
    out = np.empty((n_sel, info.n_projections, info.n_cols), dtype=np.float32)
    with _images(path, info) as data:
        for start, stop, offset in _contiguous_runs(info.projection_indices):
            for first in range(start, stop, block_images):
                last = min(stop, first + block_images)
                block = data[first:last, rows[0] : rows[1], :]
                at = offset + first - start
                out[:, at : at + last - first, :] = np.moveaxis(block, 1, 0)
    return out


def write_nxtomo(
    path: str | os.PathLike,
    data: np.ndarray,
    image_key: np.ndarray,
    angles_deg: np.ndarray,
    *,
    pixel_size_m: float | None = None,
) -> None:
    """Write an NXtomo file (atomically).

    Parameters
    ----------
    data : ndarray, shape (n, rows, cols)
        Images (counts); stored in their dtype, chunked one image at a time.
    image_key : ndarray, shape (n,)
        0 projection, 1 flat, 2 dark.
    angles_deg : ndarray, shape (n,)
        Rotation angle of each image in degrees.
    pixel_size_m
        Detector pixel size in metres, if known.
    """
    data = np.asarray(data)
    image_key = np.asarray(image_key)
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    if data.ndim != 3 or image_key.shape != (data.shape[0],) or angles_deg.shape != image_key.shape:
        raise EngineInputError(
            f"write_nxtomo: data {data.shape}, image_key {image_key.shape} and angles "
            f"{angles_deg.shape} do not fit together"
        )
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        group.create_dataset("data", data=data, chunks=(1,) + data.shape[1:])
        group.create_dataset("image_key", data=image_key.astype(np.int32))
        rotation = group.create_dataset("rotation_angle", data=angles_deg)
        rotation.attrs["units"] = "degree"
        detector = entry.create_group("instrument/detector")
        detector.attrs["NX_class"] = "NXdetector"
        if pixel_size_m is not None:
            for axis in ("x_pixel_size", "y_pixel_size"):
                ds = detector.create_dataset(axis, data=float(pixel_size_m))
                ds.attrs["units"] = "m"


class ReconstructionWriter:
    """Write ``/entry/reconstruction/data`` one slice chunk at a time (atomic on success).

    Use as a context manager::

        with ReconstructionWriter(path, (n_slices, N, N), center_of_rotation=c,
                                  voxel_size_um=7.91) as out:
            out.write(0, chunk)      # chunk: (k, N, N), written at slices 0:k
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, int, int],
        *,
        center_of_rotation: float,
        voxel_size_um: float | None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(v) for v in shape)
        self._attrs = {
            "center_of_rotation": float(center_of_rotation),
            "voxel_size_um": float(voxel_size_um) if voxel_size_um else float("nan"),
            **(attrs or {}),
        }
        self._context = None
        self._file: h5py.File | None = None
        self._dataset: h5py.Dataset | None = None
        self._written = np.zeros(self.shape[0], dtype=bool)

    def __enter__(self) -> ReconstructionWriter:
        self._context = atomic_output(self.path)
        tmp = self._context.__enter__()
        self._file = h5py.File(tmp, "w")
        self._file.require_group("entry").attrs["NX_class"] = "NXentry"
        self._dataset = self._file.create_dataset(
            RECONSTRUCTION_PATH,
            shape=self.shape,
            dtype=np.float32,
            chunks=(1,) + self.shape[1:],
        )
        write_json_attrs(self._dataset, self._attrs)
        return self

    def write(self, start: int, chunk: np.ndarray) -> None:
        """Store ``chunk`` (k, N, N) at slices ``start:start + k``."""
        if self._dataset is None:
            raise RuntimeError("ReconstructionWriter.write outside its with-block")
        chunk = np.asarray(chunk, dtype=np.float32)
        stop = start + chunk.shape[0]
        if chunk.shape[1:] != self.shape[1:] or not 0 <= start < stop <= self.shape[0]:
            raise ValueError(f"chunk {chunk.shape} at {start} does not fit {self.shape}")
        self._dataset[start:stop] = chunk
        self._written[start:stop] = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._file is not None and self._context is not None
        self._file.close()
        if exc_type is None and not self._written.all():
            missing = np.flatnonzero(~self._written)[:10].tolist()
            error = RuntimeError(f"reconstruction slices never written: {missing}")
            self._context.__exit__(RuntimeError, error, None)  # removes the partial file
            raise error
        self._context.__exit__(exc_type, exc, tb)
        return False


def read_reconstruction(
    path: str | os.PathLike, slices: tuple[int, int] | None = None
) -> np.ndarray:
    """Read ``/entry/reconstruction/data`` (all slices, or ``slices`` = (start, stop)).

    Returns
    -------
    ndarray, shape (n_slices, N, N), float32
    """
    with open_hdf5(path, what="reconstruction file") as f:
        ds = f.get(RECONSTRUCTION_PATH)
        if not isinstance(ds, h5py.Dataset):
            raise EngineInputError(f"{_name(path)} has no reconstruction at {RECONSTRUCTION_PATH}")
        start, stop = _check_rows(slices, ds.shape[0], _name(path))
        return np.asarray(ds[start:stop], dtype=np.float32)


def read_reconstruction_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Attributes of ``/entry/reconstruction/data`` (``center_of_rotation``, ``voxel_size_um``...)."""
    with open_hdf5(path, what="reconstruction file") as f:
        ds = f.get(RECONSTRUCTION_PATH)
        if not isinstance(ds, h5py.Dataset):
            raise EngineInputError(f"{_name(path)} has no reconstruction at {RECONSTRUCTION_PATH}")
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ds.attrs.items()}


def inspect_reconstruction(path: str | os.PathLike) -> dict[str, Any]:
    """Cheap upload validation of a reconstruction file; returns JSON-ready facts."""
    name = _name(path)
    with open_hdf5(path, what="reconstruction file") as f:
        ds = f.get(RECONSTRUCTION_PATH)
        if not isinstance(ds, h5py.Dataset):
            raise EngineInputError(f"{name} has no reconstruction at {RECONSTRUCTION_PATH}")
        if ds.ndim != 3 or min(ds.shape) == 0:
            raise EngineInputError(
                f"{name}: {RECONSTRUCTION_PATH} must be a (slices, rows, cols) volume, "
                f"got shape {ds.shape}"
            )
        if not np.issubdtype(ds.dtype, np.number):
            raise EngineInputError(f"{name}: reconstruction dtype {ds.dtype} is not numeric")
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ds.attrs.items()}
        shape, dtype = list(ds.shape), str(ds.dtype)
    voxel = attrs.get("voxel_size_um")
    return {
        "shape": shape,
        "dtype": dtype,
        "center_of_rotation": attrs.get("center_of_rotation"),
        "voxel_size_um": voxel if isinstance(voxel, float) and np.isfinite(voxel) else None,
    }
