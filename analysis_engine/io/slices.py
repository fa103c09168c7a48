"""Read one plane of a chunked HDF5 volume (never the whole volume), and bounded samples.

For the slice viewer and the dataset previews: a plane perpendicular to ``axis`` at ``index``,
optionally a rectangular window of it, read straight from the file; a bounded head of an
event list; NXtomo images by role (projection, flat, dark) and sinograms of one detector row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, open_hdf5
from analysis_engine.io.hexitec import HexitecEventReader

__all__ = [
    "VolumeInfo",
    "volume_info",
    "check_plane_index",
    "read_plane",
    "read_image_stack_plane",
    "read_events_head",
    "dataset_paths",
    "iter_volume_slabs",
    "write_view_volume",
    "VIEW_VOLUME_PATH",
]

#: where a reduced copy of a volume (for the viewer's side planes) keeps its voxels
VIEW_VOLUME_PATH = "/view"


@dataclass(frozen=True)
class VolumeInfo:
    """Shape, dtype and attributes of one HDF5 dataset (no pixel data)."""

    path: str
    dataset: str
    shape: tuple[int, ...]
    dtype: str
    attrs: dict[str, Any]


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size <= 64:
        return v.tolist()
    return v


def _dataset(f: h5py.File, dataset: str, name: str) -> h5py.Dataset:
    obj = f.get(dataset)
    if not isinstance(obj, h5py.Dataset):
        raise EngineInputError(f"{name} has no dataset {dataset}")
    return obj


def dataset_paths(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Every dataset in the file with its shape (``{"/a/b": shape}``)."""
    found: dict[str, tuple[int, ...]] = {}
    with open_hdf5(path) as f:
        f.visititems(
            lambda n, obj: (
                found.__setitem__("/" + n, obj.shape) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return found


def volume_info(path: str | os.PathLike, dataset: str) -> VolumeInfo:
    """Shape, dtype and attributes of ``dataset`` in ``path`` (root attributes merged under it).

    Raises
    ------
    EngineInputError
        Unreadable file, missing dataset, or not a 3D numeric volume.
    """
    name = Path(path).name
    with open_hdf5(path) as f:
        ds = _dataset(f, dataset, name)
        if ds.ndim != 3 or not np.issubdtype(ds.dtype, np.number):
            raise EngineInputError(
                f"{name}:{dataset} is not a 3D numeric volume (shape {ds.shape}, {ds.dtype})"
            )
        attrs = {k: _scalar(v) for k, v in f.attrs.items()}
        attrs.update({k: _scalar(v) for k, v in ds.attrs.items()})
        return VolumeInfo(str(path), dataset, tuple(int(s) for s in ds.shape), str(ds.dtype), attrs)


def check_plane_index(shape: tuple[int, ...], axis: Any, index: Any) -> tuple[int, int]:
    """Validate ``axis`` (0, 1, 2) and ``index`` (integer in range) for a 3D ``shape``.

    Raises
    ------
    EngineInputError
        A non-integer or out-of-range axis or index, with the allowed range.
    """
    try:
        axis_i = int(str(axis))
        index_i = int(str(index))
    except ValueError:
        raise EngineInputError(
            f"axis and index must be integers (got axis={axis!r}, index={index!r})"
        ) from None
    if axis_i not in (0, 1, 2):
        raise EngineInputError(f"axis must be 0, 1 or 2 (got {axis_i})")
    n = shape[axis_i]
    if not 0 <= index_i < n:
        raise EngineInputError(f"slice index {index_i} is outside 0..{n - 1} along axis {axis_i}")
    return axis_i, index_i


def _window(
    plane_shape: tuple[int, int], window: tuple[int, int, int, int] | None
) -> tuple[slice, slice]:
    h, w = plane_shape
    if window is None:
        return slice(0, h), slice(0, w)
    r0, r1, c0, c1 = (int(v) for v in window)
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, h), min(c1, w)
    if r1 <= r0 or c1 <= c0:
        raise EngineInputError(
            f"window rows {window[0]}:{window[1]}, cols {window[2]}:{window[3]} lies outside "
            f"the {h} x {w} plane"
        )
    return slice(r0, r1), slice(c0, c1)


def read_plane(
    path: str | os.PathLike,
    dataset: str,
    *,
    axis: int,
    index: int,
    window: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """The plane ``index`` perpendicular to ``axis`` of a 3D dataset, at full resolution.

    Parameters
    ----------
    path, dataset
        HDF5 file and the volume's path inside it.
    axis, index
        0 (z, a tomographic slice), 1 (y) or 2 (x), and the plane's index along that axis.
    window
        ``(row0, row1, col0, col1)`` of the plane (rows/cols of the remaining two axes in
        order), clipped to the plane; default the whole plane.

    Returns
    -------
    ndarray, shape (rows, cols), the file's dtype

    Raises
    ------
    EngineInputError
        Missing dataset, out-of-range axis/index, an empty window.
    """
    name = Path(path).name
    with open_hdf5(path) as f:
        ds = _dataset(f, dataset, name)
        if ds.ndim != 3:
            raise EngineInputError(f"{name}:{dataset} is not a 3D volume (shape {ds.shape})")
        axis, index = check_plane_index(ds.shape, axis, index)
        plane_shape = tuple(s for i, s in enumerate(ds.shape) if i != axis)
        rows, cols = _window(plane_shape, window)  # type: ignore[arg-type]
        sel: list[Any] = [rows, cols]
        sel.insert(axis, index)
        return np.asarray(ds[tuple(sel)])


def read_image_stack_plane(
    path: str | os.PathLike,
    dataset: str,
    indices: np.ndarray,
    *,
    row: int,
) -> np.ndarray:
    """Row ``row`` of the images ``indices`` of an image stack (a raw sinogram).

    Returns
    -------
    ndarray, shape (len(indices), cols), float32
    """
    name = Path(path).name
    with open_hdf5(path) as f:
        ds = _dataset(f, dataset, name)
        check_plane_index(ds.shape, 1, row)
        idx = np.asarray(indices, dtype=np.int64)
        out = np.empty((idx.size, ds.shape[2]), dtype=np.float32)
        # contiguous runs read as one hyperslab each
        start = 0
        while start < idx.size:
            stop = start + 1
            while stop < idx.size and idx[stop] == idx[stop - 1] + 1:
                stop += 1
            out[start:stop] = ds[idx[start] : idx[stop - 1] + 1, row, :]
            start = stop
        return out


def read_events_head(path: str | os.PathLike, *, max_events: int) -> dict[str, Any]:
    """The first ``max_events`` events of a HEXITEC event list, with its calibration.

    Returns
    -------
    dict
        ``frame``, ``row``, ``col`` arrays; ``energy_kev`` (float) computed from ADU with the
        per-pixel calibration when the file stores ADU; ``n_events`` (in the file),
        ``frame_rate_hz`` (or None), ``rows``, ``cols``.
    """
    with HexitecEventReader(path) as reader:
        n = int(reader.n_events)
        block = next(reader.blocks(max(1, min(max_events, n))), None)
        rows, cols = int(reader.rows), int(reader.cols)
        rate = reader.frame_rate_hz
        if block is None:
            raise EngineInputError(f"{Path(path).name} holds no events")
        frame, row, col = block.frame.copy(), block.row.copy(), block.col.copy()
        values = block.values.astype(np.float64)
        if reader.is_adu:
            cal = reader.calibration
            energy = cal.gain_kev_per_adu[row, col] * values + cal.offset_kev[row, col]
        else:
            energy = values
    return {
        "frame": frame,
        "row": row,
        "col": col,
        "energy_kev": energy,
        "n_events": n,
        "frame_rate_hz": rate,
        "rows": rows,
        "cols": cols,
    }


def iter_volume_slabs(
    path: str | os.PathLike, dataset: str, *, thickness: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, volume[start:start + thickness])`` along axis 0, in order: each slab is read
    as whole z chunks (a reconstruction is chunked one slice per chunk), so one pass over the
    volume reads every byte once."""
    if thickness < 1:
        raise EngineInputError(f"slab thickness must be >= 1 (got {thickness})")
    name = Path(path).name
    with open_hdf5(path) as f:
        ds = _dataset(f, dataset, name)
        if ds.ndim != 3:
            raise EngineInputError(f"{name}:{dataset} is not a 3D volume (shape {ds.shape})")
        for start in range(0, ds.shape[0], thickness):
            yield start, np.asarray(ds[start : start + thickness])


def write_view_volume(
    path: str | os.PathLike,
    shape: tuple[int, int, int],
    dtype: np.dtype | str,
    slabs: Iterator[tuple[int, np.ndarray]],
    *,
    attrs: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write a reduced volume of ``shape`` at ``VIEW_VOLUME_PATH`` from ``(start, slab)`` pairs,
    atomically, chunked in cubes of up to 32 voxels (uncompressed) so that a plane along any
    axis reads a few hundred small chunks instead of the whole file.

    Raises
    ------
    EngineInputError
        A slab that does not fit ``shape``.
    """
    chunks = tuple(max(1, min(32, int(n))) for n in shape)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset(VIEW_VOLUME_PATH, shape=shape, dtype=dtype, chunks=chunks)
        for key, value in (attrs or {}).items():
            ds.attrs[key] = value
        for start, slab in slabs:
            stop = start + slab.shape[0]
            if slab.shape[1:] != tuple(shape[1:]) or stop > shape[0]:
                raise EngineInputError(f"slab {slab.shape} at {start} does not fit {shape}")
            ds[start:stop] = slab
            if progress is not None:
                progress(stop)
