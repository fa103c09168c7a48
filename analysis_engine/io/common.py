"""File helpers shared by every reader and writer: atomic outputs, volume arguments."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "to_jsonable",
    "atomic_output",
    "dataset_paths",
    "nxdata_signal",
    "open_hdf5",
    "read_array",
    "read_json",
    "write_hdf5",
    "write_json_attrs",
]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A run that fails part-way therefore never leaves a half-written file under the requested
    name, and an existing file of that name is untouched until the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_hdf5(path: str | os.PathLike, *, what: str = "HDF5 file") -> h5py.File:
    """Open an HDF5 file read-only, turning h5py's low-level errors into clear messages."""
    p = Path(path)
    if not p.exists():
        raise EngineInputError(f"{what} not found: {p}")
    if p.stat().st_size == 0:
        raise EngineInputError(f"{what} is empty: {p}")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise EngineInputError(
            f"{what} {p.name} cannot be opened as HDF5 (truncated or not HDF5?): {exc}"
        ) from None


def require_dataset(f: h5py.File, name: str, *, what: str) -> h5py.Dataset:
    """Return ``f[name]`` or raise a message naming the missing dataset."""
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise EngineInputError(f"{what} {Path(f.filename).name} has no dataset {name}")
    return obj


def dataset_paths(path: str | os.PathLike, *, what: str = "HDF5 file") -> list[str]:
    """Absolute paths (``/group/name``) of every dataset in an HDF5 file, in visiting order."""
    held: list[str] = []
    with open_hdf5(path, what=what) as f:
        f.visititems(lambda n, o: held.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return held


def read_array(spec: str | os.PathLike) -> np.ndarray:
    """Read a whole 2D image or 3D volume named on the command line.

    ``spec`` is ``file.h5:/dataset/path``, ``file.npy``, a TIFF file (single or multi-page,
    ``.tif``/``.tiff``) or a folder of single-image TIFFs (one slice per file, natural name
    order, all the same shape). For an HDF5/NeXus file without a dataset path, the signal of
    the file's NXdata group (found through the ``default`` attributes, or the only NXdata with
    a ``signal``) is used; otherwise the file must hold exactly one dataset of 2 or more
    dimensions.
    """
    spec = str(spec)
    match = re.match(r"^(.*\.(?:h5|hdf5|hdf|nxs|nx5))(?::(.*))?$", spec, re.IGNORECASE)
    path, inner = (match.group(1), match.group(2) or "") if match else (spec, "")
    if inner:
        inner = "/" + inner.lstrip("/")
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise EngineInputError(f"input not found: {p}")
    if p.is_dir() or suffix in {".tif", ".tiff"}:
        # tifffile (behind io.tiffstack) is optional for the engine's other formats
        from analysis_engine.io.tiffstack import read_tiff_stack

        volume = read_tiff_stack(p)
        return volume[0] if volume.shape[0] == 1 and not p.is_dir() else volume
    if suffix == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise EngineInputError(f"{p.name} is not a valid .npy array: {exc}") from None
    if suffix in {".h5", ".hdf5", ".nxs", ".hdf"}:
        with open_hdf5(p) as f:
            if inner:
                return require_dataset(f, inner, what="file")[()]
            signal = nxdata_signal(f)
            if signal is not None:
                return signal[()]
            found: list[str] = []
            f.visititems(
                lambda name, obj: (
                    found.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 else None
                )
            )
            if len(found) != 1:
                raise EngineInputError(
                    f"{p.name} holds {len(found)} image datasets ({', '.join(found[:5])}); "
                    f"name one as {p.name}:/path/to/dataset"
                )
            return f[found[0]][()]
    raise EngineInputError(
        f"unsupported file type {suffix!r} for {p.name}: expected .h5:/dataset, .npy or .tif"
    )


def _attr_text(obj: h5py.HLObject, key: str) -> str | None:
    value = obj.attrs.get(key)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def nxdata_signal(f: h5py.File) -> h5py.Dataset | None:
    """The plotted dataset of a NeXus file: follow ``default`` attributes from the root to an
    NXdata group and take its ``signal``; without them, the signal of the only NXdata group
    (searched three levels deep). None when there is none."""
    group: h5py.Group = f
    for _ in range(4):
        if _attr_text(group, "NX_class") == "NXdata":
            break
        name = _attr_text(group, "default")
        child = group.get(name) if name else None
        if not isinstance(child, h5py.Group):
            group = None
            break
        group = child
    if group is None or _attr_text(group, "NX_class") != "NXdata":
        candidates: list[h5py.Group] = []

        def walk(g: h5py.Group, depth: int) -> None:
            for child in g.values():
                if isinstance(child, h5py.Group):
                    if _attr_text(child, "NX_class") == "NXdata" and _attr_text(child, "signal"):
                        candidates.append(child)
                    elif depth < 3:
                        walk(child, depth + 1)

        walk(f, 1)
        if len(candidates) != 1:
            return None
        group = candidates[0]
    signal = _attr_text(group, "signal")
    ds = group.get(signal) if signal else None
    return ds if isinstance(ds, h5py.Dataset) else None


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    """Parse a small JSON file named on the command line (geometry, calibration, standards)."""
    p = Path(path)
    if not p.is_file():
        raise EngineInputError(f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EngineInputError(f"{what} {p.name} is not valid JSON: {exc}") from None


def write_hdf5(
    path: str | os.PathLike,
    datasets: Mapping[str, Any],
    *,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
    compression: str | None = "gzip",
) -> None:
    """Write ``{"/group/name": array}`` to a new HDF5 file atomically.

    ``attrs`` maps an object path (``"/"`` for the root) to its attributes. Scalars and small
    arrays are stored uncompressed.
    """
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in datasets.items():
            arr = np.asarray(value)
            use = compression if arr.size >= 1024 else None
            f.create_dataset(name, data=arr, compression=use)
        for obj_path, obj_attrs in (attrs or {}).items():
            target = f[obj_path] if obj_path != "/" else f
            write_json_attrs(target, obj_attrs)


def write_json_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    """Store attributes, encoding dicts and lists of strings as JSON text."""
    import json

    for key, value in attrs.items():
        if isinstance(value, dict) or (
            isinstance(value, list | tuple) and any(isinstance(v, str) for v in value)
        ):
            obj.attrs[key] = json.dumps(value)
        elif value is None:
            obj.attrs[key] = "null"
        else:
            obj.attrs[key] = value


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into plain JSON types.

    Non-finite floats become ``None`` (JSON has no NaN), so summaries always serialise.
    """
    import math

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
