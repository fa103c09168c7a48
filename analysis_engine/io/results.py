"""Read back what a stage wrote: named arrays, attributes and group listings of a result file.

The platform's figures and reports draw from result HDF5 files through these functions only
(``io`` is the one layer that opens files). Every reader is tolerant of absent names: a result
written by an older engine, or a stage that skipped an optional output, simply yields fewer
arrays; an unreadable file raises :class:`EngineInputError`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5

__all__ = ["ResultContents", "read_result", "read_result_array", "read_result_plane"]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class ResultContents:
    """Arrays and attributes read from one result file (a plain in-memory snapshot).

    ``get(name)`` returns the array at ``name`` (leading ``/`` optional) or None;
    ``attrs`` holds the root attributes; ``path`` the file; ``groups(prefix)`` lists the top-level groups whose
    name starts with ``prefix``; ``shapes`` maps every dataset in the file to its shape.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        attrs: dict[str, Any],
        shapes: dict[str, tuple[int, ...]],
        path: str = "",
    ) -> None:
        self.path = path
        self._arrays = arrays
        self.attrs = attrs
        self.shapes = shapes

    @staticmethod
    def _key(name: str) -> str:
        return "/" + name.lstrip("/")

    def get(self, name: str) -> np.ndarray | None:
        return self._arrays.get(self._key(name))

    def __contains__(self, name: str) -> bool:
        key = self._key(name)
        return key in self.shapes or any(k.startswith(key + "/") for k in self.shapes)

    def groups(self, prefix: str = "") -> list[str]:
        names = {k.split("/")[1] for k in self.shapes if k.count("/") >= 2}
        return sorted(n for n in names if n.startswith(prefix))


def read_result(
    path: str | os.PathLike,
    names: Sequence[str] | None = None,
    *,
    max_elements: int = 64_000_000,
) -> ResultContents:
    """Read ``names`` (every dataset when None) of a result file, with its root attributes.

    Parameters
    ----------
    path
        HDF5 file written by an engine stage.
    names
        Dataset paths to read; absent ones are skipped. ``*`` matches any run of characters,
        ``/`` included (``"region_*"`` reads every dataset under the ``region_N`` groups).
    max_elements
        Datasets larger than this are listed in ``shapes`` but not read (whole volumes are the
        slice viewer's business, not a figure's).

    Raises
    ------
    EngineInputError
        The file is missing or not HDF5.
    """
    arrays: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with open_hdf5(path) as f:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                shapes["/" + name] = tuple(int(s) for s in obj.shape)

        f.visititems(visit)
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        wanted: list[str] = []
        for name in shapes if names is None else names:
            key = ResultContents._key(name)
            if "*" in key:
                wanted.extend(k for k in shapes if fnmatch.fnmatchcase(k, key))
            elif key in shapes:
                wanted.append(key)
        for key in wanted:
            ds = f[key]
            if ds.size <= max_elements:
                arrays[key] = ds[()]
    return ResultContents(arrays, attrs, shapes, os.fspath(path))


def read_result_array(path: str | os.PathLike, name: str) -> np.ndarray | None:
    """One array of a result file, or None when the file does not hold it.

    Raises
    ------
    EngineInputError
        The file is missing or not HDF5.
    """
    return read_result(path, [name], max_elements=2**62).get(name)


def read_result_plane(
    path: str | os.PathLike, name: str, *, axis: int, index: int | None = None
) -> np.ndarray | None:
    """The plane ``index`` (default the middle one) across ``axis`` of a 3D result array.

    Only that plane is read. None when the file holds no 3D array ``name``.
    """
    with open_hdf5(path) as f:
        ds = f.get(ResultContents._key(name))
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 3:
            return None
        if axis not in (0, 1, 2):
            raise EngineInputError(f"axis must be 0, 1 or 2 (got {axis})")
        n = ds.shape[axis]
        i = n // 2 if index is None else int(index)
        if not 0 <= i < n:
            raise EngineInputError(
                f"{Path(path).name}:{name} has {n} planes along axis {axis}; {i} is outside"
            )
        sel: list[Any] = [slice(None), slice(None)]
        sel.insert(axis, i)
        return np.asarray(ds[tuple(sel)])
