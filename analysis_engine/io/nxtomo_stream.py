"""Write an NXtomo file band of detector rows by band, never holding the whole scan.

The layout is the one :func:`analysis_engine.io.nxtomo.write_nxtomo` writes (``/entry/data/data``
(n, rows, cols), ``image_key``, ``rotation_angle`` in degrees, ``x_pixel_size`` in metres), but
the images are chunked ``(images_per_chunk, rows_per_chunk, cols)`` so that a reader of a band
of rows (a chunk of sinograms, as :func:`analysis_engine.io.nxtomo.read_sinograms` does) touches
only the chunks of those rows. A scan of tens of GB can therefore be written and reconstructed
with memory bounded by one band.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from analysis_engine.io.common import atomic_output

__all__ = ["NXtomoStreamWriter"]


class NXtomoStreamWriter:
    """Write an NXtomo file one band of detector rows at a time (atomic on success)::

        with NXtomoStreamWriter(path, image_key, angles_deg, rows=64, cols=2048) as out:
            out.write_rows(0, band)   # band: (n_images, k, cols), rows 0:k of every image

    Parameters
    ----------
    path
        Output file; appears only when the ``with`` block completes.
    image_key : ndarray, shape (n_images,)
        0 projection, 1 flat, 2 dark.
    angles_deg : ndarray, shape (n_images,)
        Rotation angle of each image in degrees.
    rows, cols
        Detector size in pixels.
    dtype
        Stored pixel type (counts), default uint16.
    pixel_size_m
        Detector pixel size in metres, if known.
    rows_per_chunk, images_per_chunk
        HDF5 chunk shape along rows and images.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        image_key: np.ndarray,
        angles_deg: np.ndarray,
        *,
        rows: int,
        cols: int,
        dtype: str | np.dtype = np.uint16,
        pixel_size_m: float | None = None,
        rows_per_chunk: int = 8,
        images_per_chunk: int = 32,
    ) -> None:
        self.path = Path(path)
        self.image_key = np.asarray(image_key, dtype=np.int32)
        self.angles_deg = np.asarray(angles_deg, dtype=np.float64)
        if self.image_key.ndim != 1 or self.angles_deg.shape != self.image_key.shape:
            raise ValueError(
                f"image_key {self.image_key.shape} and angles {self.angles_deg.shape} differ"
            )
        self.shape = (self.image_key.size, int(rows), int(cols))
        self.dtype = np.dtype(dtype)
        self.pixel_size_m = pixel_size_m
        self.chunks = (
            min(images_per_chunk, self.shape[0]),
            min(rows_per_chunk, self.shape[1]),
            self.shape[2],
        )
        self._rows_written = np.zeros(self.shape[1], dtype=bool)

    def __enter__(self) -> NXtomoStreamWriter:
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        entry = self._file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        self._data = group.create_dataset(
            "data", shape=self.shape, dtype=self.dtype, chunks=self.chunks
        )
        group.create_dataset("image_key", data=self.image_key)
        rotation = group.create_dataset("rotation_angle", data=self.angles_deg)
        rotation.attrs["units"] = "degree"
        detector = entry.create_group("instrument/detector")
        detector.attrs["NX_class"] = "NXdetector"
        if self.pixel_size_m is not None:
            for axis in ("x_pixel_size", "y_pixel_size"):
                ds = detector.create_dataset(axis, data=float(self.pixel_size_m))
                ds.attrs["units"] = "m"
        return self

    def write_rows(self, start: int, band: np.ndarray) -> None:
        """Store ``band`` (n_images, k, cols) as detector rows ``start:start + k``."""
        band = np.asarray(band)
        stop = start + band.shape[1]
        if (
            band.ndim != 3
            or band.shape[0] != self.shape[0]
            or band.shape[2] != self.shape[2]
            or not 0 <= start < stop <= self.shape[1]
        ):
            raise ValueError(f"band {band.shape} at row {start} does not fit {self.shape}")
        self._data[:, start:stop, :] = band.astype(self.dtype, copy=False)
        self._rows_written[start:stop] = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._file.close()
        if exc_type is None and not self._rows_written.all():
            missing = int(np.flatnonzero(~self._rows_written)[0])
            exc = ValueError(f"NXtomo stream closed with detector row {missing} never written")
            self._atomic.__exit__(type(exc), exc, None)
            raise exc
        self._atomic.__exit__(exc_type, exc, tb)
        return False
