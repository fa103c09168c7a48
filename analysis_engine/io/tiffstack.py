"""TIFF stacks: a folder of single-image TIFFs or one multi-page TIFF, image by image.

Used for projections, flats and darks exported as TIFF by beamline software and for
reconstructed volumes saved slice by slice. Files of a folder are taken in natural order of
their names (``img_2.tif`` before ``img_10.tif``); every image must have the same shape and
dtype. Layouts: ``docs/formats.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output

__all__ = [
    "TiffScan",
    "TiffStack",
    "find_tiff_scan",
    "read_tiff_stack",
    "tiff_projections_to_nxtomo",
    "write_tiff_stack",
]

TIFF_SUFFIXES = (".tif", ".tiff")


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class TiffStack:
    """A TIFF stack opened lazily: ``shape`` (n, rows, cols), ``dtype``, :meth:`images`.

    Raises
    ------
    EngineInputError
        No TIFF files, unreadable files, or images of different shapes or dtypes (the message
        names the first file that differs).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import tifffile

        self.path = Path(path)
        if self.path.is_dir():
            self.files = sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES),
                key=_natural_key,
            )
            if not self.files:
                raise EngineInputError(f"folder {self.path.name} holds no .tif/.tiff files")
            shapes = []
            for p in self.files:
                try:
                    with tifffile.TiffFile(p) as tif:
                        page = tif.pages[0]
                        shapes.append((tuple(page.shape), str(page.dtype), len(tif.pages)))
                except Exception as exc:  # tifffile raises several unrelated types
                    raise EngineInputError(f"{p.name} is not a readable TIFF: {exc}") from None
            first = shapes[0]
            for p, s in zip(self.files, shapes, strict=True):
                if s[2] != 1:
                    raise EngineInputError(
                        f"{p.name} in folder {self.path.name} has {s[2]} pages; a folder stack "
                        "holds one image per file"
                    )
                if s[:2] != first[:2]:
                    raise EngineInputError(
                        f"TIFF stack {self.path.name}: {p.name} is {s[0]} {s[1]} but "
                        f"{self.files[0].name} is {first[0]} {first[1]}; all images must match"
                    )
            if len(first[0]) != 2:
                raise EngineInputError(f"{self.files[0].name}: expected 2-D images, got {first[0]}")
            self.shape = (len(self.files), *first[0])
            self.dtype = np.dtype(first[1])
            self._multipage = None
        elif self.path.is_file():
            try:
                with tifffile.TiffFile(self.path) as tif:
                    pages = [(tuple(p.shape), str(p.dtype)) for p in tif.pages]
            except Exception as exc:  # tifffile raises several unrelated types
                raise EngineInputError(f"{self.path.name} is not a readable TIFF: {exc}") from None
            for i, s in enumerate(pages):
                if s != pages[0]:
                    raise EngineInputError(
                        f"multi-page TIFF {self.path.name}: page {i} is {s[0]} {s[1]} but page 0 "
                        f"is {pages[0][0]} {pages[0][1]}; all images must match"
                    )
            if len(pages[0][0]) != 2:
                raise EngineInputError(f"{self.path.name}: expected 2-D pages, got {pages[0][0]}")
            self.files = [self.path]
            self.shape = (len(pages), *pages[0][0])
            self.dtype = np.dtype(pages[0][1])
            self._multipage = self.path
        else:
            raise EngineInputError(f"TIFF stack not found: {self.path}")

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as one (stop - start, rows, cols) array."""
        import tifffile

        if stop <= start:
            return np.empty((0, *self.shape[1:]), self.dtype)
        if self._multipage is not None:
            arr = tifffile.imread(self._multipage, key=range(start, stop))
        else:
            arr = np.stack([tifffile.imread(p) for p in self.files[start:stop]])
        return np.asarray(arr).reshape(stop - start, *self.shape[1:])

    def images(self, block: int = 64) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_index, images)`` blocks of at most ``block`` images."""
        n = self.shape[0]
        for start in range(0, n, block):
            yield start, self.read(start, min(n, start + block))


def read_tiff_stack(path: str | os.PathLike) -> np.ndarray:
    """The whole stack as one array (n, rows, cols); see :class:`TiffStack`."""
    stack = TiffStack(path)
    out = np.empty(stack.shape, stack.dtype)
    for start, block in stack.images():
        out[start : start + len(block)] = block
    return out


def write_tiff_stack(path: str | os.PathLike, volume: np.ndarray) -> None:
    """Write a 2-D image or 3-D volume as one (multi-page) TIFF, atomically."""
    import tifffile

    arr = np.asarray(volume)
    with atomic_output(path) as tmp:
        tifffile.imwrite(tmp, arr, photometric="minisblack")


def tiff_projections_to_nxtomo(
    projections: str | os.PathLike,
    flats: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    darks: str | os.PathLike | None = None,
    angles_deg: np.ndarray | None = None,
    scan_range_deg: float = 180.0,
    pixel_size_m: float | None = None,
) -> dict[str, int]:
    """Assemble TIFF stacks of projections, flats and darks into one NXtomo file.

    Parameters
    ----------
    projections, flats, darks
        TIFF stacks (folder or multi-page file); all images the same shape.
    angles_deg
        Angle of each projection; default: ``n`` equal steps over ``scan_range_deg``
        (the end point excluded).

    Raises
    ------
    EngineInputError
        Stacks that differ in image shape, or an angle count different from the projections.
    """
    import h5py

    stacks = {"projections": TiffStack(projections), "flats": TiffStack(flats)}
    if darks is not None:
        stacks["darks"] = TiffStack(darks)
    shape = stacks["projections"].shape[1:]
    for name, stack in stacks.items():
        if stack.shape[1:] != shape:
            raise EngineInputError(
                f"{name} images are {stack.shape[1:]} but projections are {shape}"
            )
    n_proj = stacks["projections"].shape[0]
    if angles_deg is None:
        angles_deg = np.arange(n_proj) * float(scan_range_deg) / n_proj
    angles_deg = np.asarray(angles_deg, dtype=np.float64).ravel()
    if angles_deg.size != n_proj:
        raise EngineInputError(
            f"{angles_deg.size} angles given for {n_proj} projection images; they must match"
        )
    codes = {"projections": 0, "flats": 1, "darks": 2}
    keys, angles = [], []
    for name, stack in stacks.items():
        keys.append(np.full(stack.shape[0], codes[name], np.int8))
        angles.append(angles_deg if name == "projections" else np.zeros(stack.shape[0]))
    total = sum(s.shape[0] for s in stacks.values())
    with atomic_output(output_path) as tmp, h5py.File(tmp, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["definition"] = "NXtomo"
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        data = det.create_dataset(
            "data", shape=(total, *shape), dtype=stacks["projections"].dtype, chunks=(1, *shape)
        )
        at = 0
        for stack in stacks.values():
            for start, block in stack.images():
                data[at + start : at + start + len(block)] = block
            at += stack.shape[0]
        det["image_key"] = np.concatenate(keys)
        if pixel_size_m is not None:
            det["x_pixel_size"] = float(pixel_size_m)
            det["x_pixel_size"].attrs["units"] = "m"
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["rotation_angle"] = np.concatenate(angles)
        sample["rotation_angle"].attrs["units"] = "degree"
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        group["data"] = h5py.SoftLink("/entry/instrument/detector/data")
        group["image_key"] = h5py.SoftLink("/entry/instrument/detector/image_key")
        group["rotation_angle"] = h5py.SoftLink("/entry/sample/rotation_angle")
    return {name: s.shape[0] for name, s in stacks.items()}


SCAN_PARTS = ("projections", "flats", "darks")


def _part(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, *(folder / f"{name}{s}" for s in TIFF_SUFFIXES)):
        if candidate.exists():
            return candidate
    return None


def find_tiff_scan(path: str | os.PathLike) -> dict[str, Path] | None:
    """The parts of a TIFF scan folder, or None if ``path`` is not one.

    A scan folder holds ``projections`` and ``flats`` (each a folder of TIFFs or a multi-page
    ``.tif``/``.tiff``), optionally ``darks`` and ``angles.txt`` (one angle in degrees per
    projection; default equal steps over 180 deg).
    """
    folder = Path(path)
    if not folder.is_dir():
        return None
    parts = {name: _part(folder, name) for name in SCAN_PARTS}
    if parts["projections"] is None:
        return None
    found = {k: v for k, v in parts.items() if v is not None}
    if (folder / "angles.txt").is_file():
        found["angles"] = folder / "angles.txt"
    return found


class TiffScan:
    """Projections, flats and darks of a TIFF scan folder as one virtual image stack.

    Images are numbered projections first, then flats, then darks; ``scan[a:b, r0:r1, :]``
    reads only images ``a:b`` (and keeps rows ``r0:r1``), like an HDF5 dataset.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        parts = find_tiff_scan(path)
        if parts is None:
            raise EngineInputError(f"{Path(path).name} is not a TIFF scan folder (no projections)")
        if "flats" not in parts:
            raise EngineInputError(
                f"TIFF scan {Path(path).name} has no flats (a 'flats' folder or flats.tif): "
                "cannot normalise projections"
            )
        self.stacks = [TiffStack(parts[name]) for name in SCAN_PARTS if name in parts]
        shape = self.stacks[0].shape[1:]
        for name, stack in zip(SCAN_PARTS, self.stacks, strict=False):
            if stack.shape[1:] != shape:
                raise EngineInputError(
                    f"TIFF scan {Path(path).name}: {name} images are {stack.shape[1:]} but "
                    f"projections are {shape}"
                )
        counts = [s.shape[0] for s in self.stacks]
        self.offsets = np.cumsum([0, *counts])
        self.shape = (int(self.offsets[-1]), *shape)
        self.dtype = self.stacks[0].dtype
        self.ndim = 3
        keys = [np.full(n, code, np.int8) for code, n in zip((0, 1, 2), counts, strict=False)]
        self.image_key = np.concatenate(keys)
        n_proj = counts[0]
        if "angles" in parts:
            try:
                angles = np.loadtxt(parts["angles"], dtype=np.float64, ndmin=1)
            except ValueError as exc:
                raise EngineInputError(f"angles.txt is not a list of numbers: {exc}") from None
        else:
            angles = np.arange(n_proj) * 180.0 / n_proj
        if angles.size != n_proj:
            raise EngineInputError(
                f"TIFF scan {Path(path).name}: angles.txt has {angles.size} angles for {n_proj} "
                "projections; they must match"
            )
        self.angles_deg = np.r_[angles, np.zeros(self.shape[0] - n_proj)]

    def __getitem__(self, index: tuple) -> np.ndarray:
        images, rows, cols = (tuple(index) + (slice(None),) * 3)[:3]
        start, stop, _ = images.indices(self.shape[0])
        parts = []
        for k, stack in enumerate(self.stacks):
            a, b = max(start, self.offsets[k]), min(stop, self.offsets[k + 1])
            if a < b:
                part = stack.read(int(a - self.offsets[k]), int(b - self.offsets[k]))
                parts.append(part[:, rows, cols])
        return np.concatenate(parts) if parts else np.empty((0, *self.shape[1:]), self.dtype)
