"""The ``register`` command: :func:`run_register` aligns any 2D image onto another.

The platform's tasks call :func:`run_register` as well. The
correlative step that registers each XCT depth slab onto its Compton map is the ``correlate``
command of :mod:`analysis_engine.correlation.commands`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5, read_array, write_hdf5
from analysis_engine.parameters import Command
from analysis_engine.registration.align import (
    DEFAULT_MIN_QUALITY,
    SimilarityTransform2D,
    register_images,
)

__all__ = ["COMMANDS", "TRANSFORM_CONVENTION", "parse_transform", "run_register"]

Progress = Callable[[float, str], None] | None

TRANSFORM_CONVENTION = (
    "matrix maps moving (row, col, 1) pixel indices to fixed (row, col, 1); summary transform: "
    "p = c + scale * R(rotation) (q - c) + shift about the fixed image centre c, rotation "
    "positive from +x towards +y (row), shift_px = [dy, dx] in fixed pixels"
)


def _report(progress: Progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def parse_transform(value) -> SimilarityTransform2D | None:
    """A transform given as a dict, JSON text, an instance or None (fit it)."""
    if value is None or isinstance(value, SimilarityTransform2D):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise EngineInputError(
                f'--transform must be JSON like {{"shift_px": [1.5, -2], "rotation_deg": 0.4, '
                f'"scale": 1.0}}: {exc}'
            ) from None
    return SimilarityTransform2D.from_dict(value)


def _pixel_size_attr(spec: str) -> float | None:
    """``pixel_size_um`` / ``voxel_size_um`` attribute of an HDF5 dataset (or its file), if any."""
    match = re.match(r"^(.*\.(?:h5|hdf5|hdf|nxs))(?::(.*))?$", str(spec), re.IGNORECASE)
    if not match:
        return None
    path, inner = match.group(1), "/" + (match.group(2) or "").lstrip("/")
    with open_hdf5(path) as f:
        objects = ([f[inner]] if inner != "/" and inner in f else []) + [f]
        for obj in objects:
            for key in ("pixel_size_um", "voxel_size_um"):
                if key in obj.attrs:
                    return float(np.asarray(obj.attrs[key]).ravel()[0])
    return None


def run_register(
    moving_spec: str,
    fixed_spec: str,
    output_path: str | Path,
    *,
    moving_pixel_um: float | None = None,
    fixed_pixel_um: float | None = None,
    allow_scale: bool = True,
    transform: dict | str | SimilarityTransform2D | None = None,
    min_quality: float = DEFAULT_MIN_QUALITY,
    progress: Progress = None,
) -> dict:
    """Register a moving 2D image onto a fixed one and write the result (``register`` CLI).

    Parameters
    ----------
    moving_spec
        Image to move: ``file.h5:/dataset``, ``.npy`` or TIFF, e.g. an XCT porosity or
        density map; NaN marks pixels without data.
    fixed_spec
        Image that stays, e.g. ``compton.h5:/compton_counts``; NaN marks pixels without data.
    output_path
        HDF5 file to write: ``/registered`` (moving resampled onto the fixed grid, NaN outside
        its footprint), ``/transform`` (3 x 3 matrix, moving (row, col, 1) -> fixed), with the
        summary as attributes of ``/transform``.
    moving_pixel_um
        Pixel size of the moving image at the sample; read from a ``pixel_size_um`` or
        ``voxel_size_um`` attribute when neither size is given. Required when the images
        differ in size.
    fixed_pixel_um
        Pixel size of the fixed image at the sample (as ``moving_pixel_um``).
    allow_scale
        Fit an isotropic scale on top of the stated pixel ratio.
    transform
        User override ``{"shift_px": [dy, dx], "rotation_deg": a, "scale": s}`` (or JSON text):
        applied without fitting; its quality is still reported.
    min_quality
        Registrations with a lower quality raise instead of being written.
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``shift_px`` [dy, dx], ``rotation_deg``, ``scale``, ``quality``, ``overlap_fraction``,
        ``method``, ``pixel_ratio``, ``initial``, ``shape``.

    Raises
    ------
    EngineInputError
        Unreadable inputs, different sizes without pixel sizes, empty images, no overlap,
        quality below ``min_quality`` (``RegistrationError``); nothing is written then.
    """
    _report(progress, 0.0, "reading images")
    moving = read_array(moving_spec)
    fixed = read_array(fixed_spec)
    if moving_pixel_um is None and fixed_pixel_um is None:
        moving_pixel_um, fixed_pixel_um = (
            _pixel_size_attr(moving_spec),
            _pixel_size_attr(fixed_spec),
        )
        if moving_pixel_um is None or fixed_pixel_um is None:
            moving_pixel_um = fixed_pixel_um = None
    _report(progress, 0.1, "registering")
    result = register_images(
        moving,
        fixed,
        moving_pixel_um=moving_pixel_um,
        fixed_pixel_um=fixed_pixel_um,
        allow_scale=allow_scale,
        transform=parse_transform(transform),
        min_quality=min_quality,
    )
    summary = result.summary()
    summary["shape"] = list(result.registered.shape)
    _report(progress, 0.9, f"writing {Path(output_path).name}")
    write_hdf5(
        output_path,
        {"/registered": result.registered.astype(np.float32), "/transform": result.matrix},
        attrs={"/transform": {**summary, "convention": TRANSFORM_CONVENTION}},
    )
    _report(progress, 1.0, "done")
    return summary


# ---------------------------------------------------------------------------------------------
# command line: generated from the signature above (analysis_engine.parameters)

COMMANDS = (Command("register", run_register, inputs=("moving_spec", "fixed_spec")),)
