"""``reconstruct``: NXtomo projections to a reconstructed volume, chunk by chunk.

Pipeline per chunk of detector rows (slices): read raw sinograms -> flat/dark normalisation and
minus log -> optional ring removal (Vo 2018) -> optional 360 -> 180 deg stitching of an
off-centre scan (Vo 2021) -> filtered back projection (fastest available backend) -> write.

The platform fans a reconstruction out over workers with three calls::

    plan = plan_reconstruction(nxs, center="auto", slices=None, chunk_slices=16)
    parts = [reconstruct_chunk(nxs, part_i, slices=chunk, **plan["chunk_options"])
             for chunk in plan["chunks"]]                       # one Celery task each
    merge_chunks([part_0, part_1, ...], out_h5)

and :func:`run_reconstruct` does the same in one process (the CLI command). The centre of
rotation is decided once in the plan, so independent chunks agree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo import (
    NXtomoInfo,
    ReconstructionWriter,
    read_flats_darks,
    read_nxtomo_info,
    read_reconstruction,
    read_reconstruction_attrs,
    read_sinograms,
)
from analysis_engine.parameters import Command, Option
from analysis_engine.tomo.backends import FILTERS, fbp, get_backend
from analysis_engine.tomo.center import find_center_of_rotation
from analysis_engine.tomo.preprocess import line_integrals
from analysis_engine.tomo.rings import RING_METHODS, remove_rings
from analysis_engine.tomo.stitch import convert_360_to_180, find_half_acquisition_center

__all__ = [
    "COMMANDS",
    "chunk_memory_bytes",
    "estimate_chunk_memory",
    "plan_reconstruction",
    "reconstruct_slices",
    "reconstruct_chunk",
    "merge_chunks",
    "run_reconstruct",
    "parse_slices",
]

Progress = Callable[[float, str], None] | None
DEFAULT_CHUNK_SLICES = 16
_CENTER_ROWS = 5  # detector rows averaged for the automatic centre search


def parse_slices(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` -> ``(A, B)``; ``None``/empty -> ``None``."""
    if not text:
        return None
    try:
        start, stop = (int(part) for part in str(text).split(":"))
    except ValueError:
        raise EngineInputError(f"--slices must be START:STOP (integers), got {text!r}") from None
    return start, stop


def _parse_center(center: str | float | None) -> float | None:
    if center is None or (isinstance(center, str) and center.strip().lower() == "auto"):
        return None
    try:
        value = float(center)
    except (TypeError, ValueError):
        raise EngineInputError(
            f"--center must be 'auto' or a number of pixels, got {center!r}"
        ) from None
    if not np.isfinite(value):
        raise EngineInputError(f"--center must be finite, got {center!r}")
    return value


def _slice_range(info: NXtomoInfo, slices: Sequence[int] | None) -> tuple[int, int]:
    if slices is None:
        return 0, info.n_rows
    start, stop = int(slices[0]), int(slices[1])
    if not 0 <= start < stop <= info.n_rows:
        raise EngineInputError(
            f"slice range {start}:{stop} lies outside the data: {Path(info.path).name} has "
            f"{info.n_rows} detector rows (slices 0:{info.n_rows})"
        )
    return start, stop


def check_free_space(output_path: str | os.PathLike, shape: Sequence[int]) -> int:
    """Refuse a reconstruction whose float32 output would not fit the output's file system.

    Returns the output size in bytes; raises :class:`EngineInputError` before any work when
    the free space (of the nearest existing folder above ``output_path``) is smaller.
    """
    n_bytes = int(np.prod([int(n) for n in shape], dtype=np.float64)) * 4
    folder = Path(output_path).resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if n_bytes > free:
        raise EngineInputError(
            f"the reconstruction {' x '.join(str(int(n)) for n in shape)} float32 needs "
            f"{n_bytes / 1e9:.1f} GB but only {free / 1e9:.1f} GB are free under {folder}: "
            "reconstruct fewer slices (--slices A:B) or free space first"
        )
    return n_bytes


def _sorted_angles(info: NXtomoInfo) -> np.ndarray:
    return np.argsort(info.angles_deg, kind="stable")


def _load_line_integrals(
    input_path: str | os.PathLike,
    info: NXtomoInfo,
    rows: tuple[int, int],
    *,
    ring_removal: bool | str,
) -> tuple[np.ndarray, np.ndarray]:
    """Line-integral sinograms (rows, n_proj, cols) in increasing angle order + angles (deg)."""
    flat, dark = read_flats_darks(input_path, rows=rows, info=info)
    raw = read_sinograms(input_path, rows=rows, info=info)
    order = _sorted_angles(info)
    sinograms = line_integrals(raw[:, order, :], flat, dark)
    del raw
    if ring_removal:
        method = ring_removal if isinstance(ring_removal, str) else "sorting"
        sinograms = remove_rings(sinograms, method=method)
    return sinograms, info.angles_deg[order]


def _ring_removal(ring_removal: bool | str, ring_method: str) -> bool | str:
    """False, or the stripe-removal method to apply (the chunks' ``ring_removal``)."""
    if isinstance(ring_removal, str):  # the method's name in place of True, as jobs once sent
        ring_removal, ring_method = True, ring_removal
    if not ring_removal:
        return False
    if ring_method not in RING_METHODS:
        raise EngineInputError(
            f"unknown ring removal method {ring_method!r}: expected one of "
            f"{', '.join(RING_METHODS)}"
        )
    return ring_method


def plan_reconstruction(
    input_path: str | os.PathLike,
    *,
    center: str | float | None = "auto",
    half_acquisition: bool = False,
    ring_removal: bool = False,
    ring_method: str = "sorting",
    backend: str | None = None,
    slices: Sequence[int] | None = None,
    chunk_slices: int = DEFAULT_CHUNK_SLICES,
    filter_name: str = "ram-lak",
) -> dict[str, Any]:
    """Validate the input, decide the centre of rotation once, and split the work in chunks.

    Parameters
    ----------
    input_path
        NXtomo file (any layout of docs/formats.md) or a TIFF scan folder.
    center
        ``"auto"`` or the axis position in detector pixels (for a half-acquisition scan: on the
        raw, unstitched detector).
    half_acquisition
        The scan is a 360 deg off-centre (double field of view) scan to stitch to 180 deg.
    ring_removal
        Remove ring artefacts by sinogram stripe filtering (Vo 2018) before the
        reconstruction.
    ring_method
        Stripe removal algorithm of the ring removal, one of
        :data:`~analysis_engine.tomo.rings.RING_METHODS`.
    backend
        FBP backend: native, fourier (Fourier-space NUFFT, fastest for wide detectors), astra,
        algotom or tomopy (default: the fastest available for typical chunks).
    slices
        (start, stop) detector rows to reconstruct (default all).
    chunk_slices
        Slices per chunk (memory per worker grows linearly with it).
    filter_name
        FBP filter, one of :data:`~analysis_engine.tomo.backends.FILTERS`.

    Returns
    -------
    dict (JSON-ready)
        ``chunks`` [[a, b], ...], ``chunk_options`` (keyword arguments for
        :func:`reconstruct_chunk`), ``center_of_rotation``, ``shape`` of the output,
        ``backend``, ``voxel_size_um``, ``scan_range_deg`` and, for half acquisition,
        ``overlap_px`` and ``side``.
    """
    info = read_nxtomo_info(input_path)
    start, stop = _slice_range(info, slices)
    if int(chunk_slices) < 1:
        raise EngineInputError(f"chunk_slices must be at least 1, got {chunk_slices}")
    if filter_name not in FILTERS:
        raise EngineInputError(f"unknown FBP filter {filter_name!r}: expected one of {FILTERS}")
    ring_removal = _ring_removal(ring_removal, ring_method)
    backend_name = get_backend(backend).name
    if half_acquisition and info.scan_range_deg != 360:
        raise EngineInputError(
            "--half-acquisition needs a 360 deg scan, but the projection angles of "
            f"{Path(input_path).name} cover 180 deg"
        )
    given = _parse_center(center)
    extra: dict[str, Any] = {}
    if given is not None and not 0.0 <= given <= info.n_cols - 1:
        raise EngineInputError(
            f"centre of rotation {given} px lies outside the detector (0..{info.n_cols - 1})"
        )
    middle = (start + stop) // 2
    rows = (
        max(start, middle - _CENTER_ROWS // 2),
        min(stop, middle - _CENTER_ROWS // 2 + _CENTER_ROWS),
    )
    if half_acquisition:
        sinograms, angles = _load_line_integrals(input_path, info, rows, ring_removal=ring_removal)
        if given is None:
            geometry = find_half_acquisition_center(sinograms, angles)
            given = geometry.center
            extra = {"overlap_px": geometry.overlap, "side": geometry.side}
        _, _, center_180 = convert_360_to_180(sinograms[:1, :, :], angles, given)
        width = int(np.floor(2.0 * max(given, info.n_cols - 1 - given) + 1e-6)) + 1
        extra["center_of_rotation_stitched"] = center_180
    else:
        if given is None:
            sinograms, angles = _load_line_integrals(
                input_path, info, rows, ring_removal=ring_removal
            )
            half = angles < angles[0] + 180.0 - 1e-6  # Vo's metric needs a 180 deg sinogram
            given = find_center_of_rotation(sinograms[:, half, :])
        width = info.n_cols
    chunk_slices = int(chunk_slices)
    chunks = [[a, min(a + chunk_slices, stop)] for a in range(start, stop, chunk_slices)]
    voxel_size_um = info.pixel_size_m * 1e6 if info.pixel_size_m else None
    return {
        "input": str(input_path),
        "slices": [start, stop],
        "chunks": chunks,
        "center_of_rotation": float(given),
        "shape": [stop - start, width, width],
        "backend": backend_name,
        "voxel_size_um": voxel_size_um,
        "scan_range_deg": info.scan_range_deg,
        "projections": info.n_projections,
        **extra,
        "chunk_options": {
            "center": float(given),
            "half_acquisition": bool(half_acquisition),
            "ring_removal": ring_removal,
            "backend": backend_name,
            "filter_name": filter_name,
        },
    }


#: resident memory of a worker process before any chunk (interpreter, numpy, scipy, h5py)
BASE_PROCESS_BYTES = 300 * 1024**2


def chunk_memory_bytes(
    *,
    rows: int,
    projections: int,
    cols: int,
    width: int,
    itemsize: int = 2,
    half_acquisition: bool = False,
) -> int:
    """Estimated peak memory of reconstructing ``rows`` slices, beyond the idle process.

    The sum of what :func:`reconstruct_slices` holds at its peak: the raw rows and their
    copy in angle order (``itemsize`` bytes per value), the float32 line integrals and one
    temporary of them, the stitched 180 deg sinograms (half acquisition: half the angles,
    ``width`` wide), the float32 output slices and one slice's padded complex Fourier grid
    ``(2 width)^2``. For 8 slices of 3600 x 2048 stitched to 3718 it gives 1.82 GB; with the
    idle process (:data:`BASE_PROCESS_BYTES`) that is 2.12 GB, where ``/usr/bin/time``
    measured a peak of 2194 MB for that run (benchmarks/results/paper_scale.md).
    """
    raw = rows * projections * cols
    sino_angles = projections // 2 if half_acquisition else projections
    total = (
        2 * raw * int(itemsize)
        + 2 * raw * 4
        + (rows * sino_angles * width * 4 if half_acquisition else 0)
        + rows * width * width * 4
        + (2 * width) ** 2 * 8
    )
    return int(total)


def estimate_chunk_memory(
    input_path: str | os.PathLike,
    *,
    slices: Sequence[int],
    center: float,
    half_acquisition: bool = False,
) -> int:
    """:func:`chunk_memory_bytes` of one chunk of :func:`reconstruct_chunk` (reads only the
    file's layout)."""
    info = read_nxtomo_info(input_path)
    start, stop = _slice_range(info, slices)
    width = (
        int(np.floor(2.0 * max(center, info.n_cols - 1 - center) + 1e-6)) + 1
        if half_acquisition
        else info.n_cols
    )
    return chunk_memory_bytes(
        rows=stop - start,
        projections=info.n_projections,
        cols=info.n_cols,
        width=width,
        itemsize=np.dtype(info.dtype).itemsize,
        half_acquisition=half_acquisition,
    )


def reconstruct_slices(
    input_path: str | os.PathLike,
    *,
    slices: Sequence[int],
    center: float,
    half_acquisition: bool = False,
    ring_removal: bool | str = False,
    backend: str | None = None,
    filter_name: str = "ram-lak",
    info: NXtomoInfo | None = None,
) -> tuple[np.ndarray, float]:
    """Reconstruct detector rows ``slices`` = (a, b) in memory.

    Returns
    -------
    volume : ndarray, shape (b - a, N, N), float32
        Attenuation coefficient per voxel (1 / voxel).
    center_used : float
        Axis position in the sinograms that were back-projected (the stitched sinogram's for
        half acquisition).
    """
    info = info or read_nxtomo_info(input_path)
    rows = _slice_range(info, slices)
    sinograms, angles = _load_line_integrals(input_path, info, rows, ring_removal=ring_removal)
    if half_acquisition:
        sinograms, angles, center = convert_360_to_180(sinograms, angles, float(center))
    volume = fbp(
        sinograms, np.deg2rad(angles), float(center), filter_name=filter_name, backend=backend
    )
    return volume, float(center)


def reconstruct_chunk(
    input_path: str | os.PathLike,
    output_part_path: str | os.PathLike,
    *,
    slices: Sequence[int],
    center: float,
    half_acquisition: bool = False,
    ring_removal: bool | str = False,
    backend: str | None = None,
    filter_name: str = "ram-lak",
    progress: Progress = None,
) -> dict[str, Any]:
    """Reconstruct one chunk of slices into its own part file (one worker's job).

    The part file has the layout of a reconstruction, holding only slices ``a:b``, with attrs
    ``slice_start`` and ``slice_stop``; :func:`merge_chunks` joins the parts. ``center`` comes
    from :func:`plan_reconstruction` (its ``chunk_options``).

    Returns
    -------
    dict
        ``slices``, ``shape`` of the part, ``center_of_rotation``, ``backend``.
    """
    info = read_nxtomo_info(input_path)
    start, stop = _slice_range(info, slices)
    backend_name = get_backend(backend).name
    if progress:
        progress(0.0, f"reconstructing slices {start}:{stop} with {backend_name}")
    volume, center_used = reconstruct_slices(
        input_path,
        slices=(start, stop),
        center=center,
        half_acquisition=half_acquisition,
        ring_removal=ring_removal,
        backend=backend_name,
        filter_name=filter_name,
        info=info,
    )
    attrs = {
        "slice_start": start,
        "slice_stop": stop,
        "backend": backend_name,
        "center_of_rotation_stitched": center_used if half_acquisition else float(center),
    }
    voxel = info.pixel_size_m * 1e6 if info.pixel_size_m else None
    with ReconstructionWriter(
        output_part_path, volume.shape, center_of_rotation=center, voxel_size_um=voxel, attrs=attrs
    ) as out:
        out.write(0, volume)
    if progress:
        progress(1.0, f"slices {start}:{stop} done")
    return {
        "slices": [start, stop],
        "shape": list(volume.shape),
        "center_of_rotation": float(center),
        "backend": backend_name,
    }


def merge_chunks(
    part_paths: Sequence[str | os.PathLike],
    output_path: str | os.PathLike,
    *,
    progress: Progress = None,
) -> dict[str, Any]:
    """Join part files of :func:`reconstruct_chunk` (any order) into one reconstruction.

    The parts must tile a contiguous slice range with equal slice shapes; the output's
    slice 0 is the first part's ``slice_start``. Copies one part at a time.

    Returns
    -------
    dict
        ``center_of_rotation``, ``shape``, ``backend``, ``slices``.
    """
    if not part_paths:
        raise EngineInputError("merge_chunks needs at least one part file")
    parts = []
    for path in part_paths:
        attrs = read_reconstruction_attrs(path)
        if "slice_start" not in attrs or "slice_stop" not in attrs:
            raise EngineInputError(f"{Path(path).name} is not a reconstruction part file")
        parts.append((int(attrs["slice_start"]), int(attrs["slice_stop"]), path, attrs))
    parts.sort(key=lambda item: item[0])
    for (_, stop, _, _), (start, _, path, _) in zip(parts, parts[1:], strict=False):
        if start != stop:
            raise EngineInputError(
                f"reconstruction parts do not tile the slices: a gap or overlap at slice {stop} "
                f"({Path(path).name} starts at {start})"
            )
    first_attrs = parts[0][3]
    first = read_reconstruction(parts[0][2], slices=None)
    n_total = parts[-1][1] - parts[0][0]
    shape = (n_total,) + first.shape[1:]
    voxel = first_attrs.get("voxel_size_um")
    attrs = {
        key: first_attrs[key]
        for key in ("backend", "center_of_rotation_stitched")
        if key in first_attrs
    }
    attrs["slice_offset"] = parts[0][0]
    with ReconstructionWriter(
        output_path,
        shape,
        center_of_rotation=float(first_attrs["center_of_rotation"]),
        voxel_size_um=voxel if isinstance(voxel, float) and np.isfinite(voxel) else None,
        attrs=attrs,
    ) as out:
        for index, (start, _, path, _) in enumerate(parts):
            block = first if index == 0 else read_reconstruction(path)
            if block.shape[1:] != shape[1:]:
                raise EngineInputError(
                    f"part {Path(path).name} has slices of shape {block.shape[1:]}, "
                    f"expected {shape[1:]}"
                )
            out.write(start - parts[0][0], block)
            if progress:
                progress((index + 1) / len(parts), f"merged {Path(path).name}")
    return {
        "center_of_rotation": float(first_attrs["center_of_rotation"]),
        "shape": list(shape),
        "backend": first_attrs.get("backend"),
        "slices": [parts[0][0], parts[-1][1]],
    }


def run_reconstruct(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    center: str | float | None = "auto",
    half_acquisition: bool = False,
    ring_removal: bool = False,
    ring_method: str = "sorting",
    backend: str | None = None,
    slices: Sequence[int] | None = None,
    chunk_slices: int = DEFAULT_CHUNK_SLICES,
    filter_name: str = "ram-lak",
    progress: Progress = None,
) -> dict[str, Any]:
    """Reconstruct an NXtomo scan into ``/entry/reconstruction/data`` of ``output_path``.

    Parameters
    ----------
    input_path
        NXtomo file (any layout of docs/formats.md) or a TIFF scan folder.
    output_path
        HDF5 file: ``/entry/reconstruction/data`` (slices, N, N) float32 attenuation per voxel,
        attrs ``center_of_rotation`` (detector px) and ``voxel_size_um``; written chunk by
        chunk, atomically (no partial file on failure).
    center, half_acquisition, ring_removal, ring_method, backend, slices, chunk_slices,
    filter_name
        See :func:`plan_reconstruction`.
    progress
        Optional ``progress(fraction, message)``, called after each chunk.

    Returns
    -------
    dict
        ``center_of_rotation``, ``shape``, ``backend``, ``slices``, ``chunks``,
        ``voxel_size_um``, ``half_acquisition``, ``ring_removal``, ``ring_method`` (None without
        ring removal) (+ ``overlap_px``, ``side`` for an automatically found half-acquisition
        axis).
    """
    plan = plan_reconstruction(
        input_path,
        center=center,
        half_acquisition=half_acquisition,
        ring_removal=ring_removal,
        ring_method=ring_method,
        backend=backend,
        slices=slices,
        chunk_slices=chunk_slices,
        filter_name=filter_name,
    )
    if progress:
        progress(
            0.0,
            f"centre of rotation {plan['center_of_rotation']:.2f} px, "
            f"{len(plan['chunks'])} chunks, backend {plan['backend']}",
        )
    check_free_space(output_path, plan["shape"])
    info = read_nxtomo_info(input_path)
    options = plan["chunk_options"]
    first_slice = plan["slices"][0]
    attrs = {"backend": plan["backend"], "slice_offset": first_slice}
    if "center_of_rotation_stitched" in plan:
        attrs["center_of_rotation_stitched"] = plan["center_of_rotation_stitched"]
    with ReconstructionWriter(
        output_path,
        tuple(plan["shape"]),
        center_of_rotation=plan["center_of_rotation"],
        voxel_size_um=plan["voxel_size_um"],
        attrs=attrs,
    ) as out:
        for index, (a, b) in enumerate(plan["chunks"]):
            volume, _ = reconstruct_slices(input_path, slices=(a, b), info=info, **options)
            out.write(a - first_slice, volume)
            if progress:
                progress((index + 1) / len(plan["chunks"]), f"slices {a}:{b} reconstructed")
    summary = {
        key: plan[key]
        for key in (
            "center_of_rotation",
            "shape",
            "backend",
            "slices",
            "voxel_size_um",
            "scan_range_deg",
        )
    }
    summary.update(
        {
            "chunks": len(plan["chunks"]),
            "half_acquisition": bool(half_acquisition),
            "ring_removal": bool(options["ring_removal"]),
            "ring_method": options["ring_removal"] or None,
        }
    )
    for key in ("overlap_px", "side", "center_of_rotation_stitched"):
        if key in plan:
            summary[key] = plan[key]
    return summary


COMMANDS = (
    Command(
        "reconstruct",
        run_reconstruct,
        inputs=("input_path",),
        options={
            "slices": Option(parse=parse_slices, metavar="START:STOP"),
            "ring_method": Option(choices=RING_METHODS),
            "filter_name": Option(choices=FILTERS),
        },
    ),
)
