"""The ``segment`` command: XCT volume -> electrode/pore masks and porosity by depth region.

``python -m analysis_engine segment IN -o OUT.h5 [--regions 3] [--thickness-axis AX] ...``

``IN`` is a reconstruction written by ``reconstruct`` (``/entry/reconstruction/data``) or any
volume argument (``file.h5:/path``, ``file.npy``, TIFF stack). The output HDF5 holds
``/electrode_mask`` and ``/pore_mask`` (uint8, volume shape), ``/porosity_by_region`` (n,),
``/lateral_porosity`` (n, H, W), ``/region_bounds`` (n + 1,) and the group
``/electrode_volume_profile`` (``distance_voxels``, ``distance_um`` when the voxel size is
known, ``electrode_voxels``, ``material_voxels``, ``material_fraction``), ordered from the
current collector outwards (paper Fig. S11).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine import __version__
from analysis_engine.errors import EngineInputError
from analysis_engine.io import nxtomo
from analysis_engine.io.common import atomic_output, open_hdf5, read_array, write_json_attrs
from analysis_engine.parameters import Command
from analysis_engine.tomo.segment_stream import DEFAULT_BLOCK_VOXELS, segment_streamed

__all__ = ["COMMANDS", "run_segment", "read_volume"]

RECONSTRUCTION_PATH = "/entry/reconstruction/data"


def read_volume(input_spec: str | os.PathLike) -> tuple[np.ndarray, float | None]:
    """Read a volume argument; return it with its voxel size in um when the file records one.

    A bare HDF5 path holding ``/entry/reconstruction/data`` reads that dataset (and its
    ``voxel_size_um`` attribute); anything else goes through
    :func:`analysis_engine.io.common.read_array`.
    """
    spec = str(input_spec)
    match = re.match(r"^(.*\.(?:h5|hdf5|hdf|nxs|nx5))(?::(.*))?$", spec, re.IGNORECASE)
    if match and Path(match.group(1)).exists():
        inner = match.group(2) or ""
        if inner in ("", RECONSTRUCTION_PATH, RECONSTRUCTION_PATH.lstrip("/")):
            try:
                attrs = nxtomo.read_reconstruction_attrs(match.group(1))
            except EngineInputError:
                attrs = None  # not a reconstruction file: fall back to the generic reader
            if attrs is not None:
                volume = nxtomo.read_reconstruction(match.group(1))
                voxel = attrs.get("voxel_size_um")
                try:
                    voxel = float(voxel) if voxel is not None else None
                except (TypeError, ValueError):
                    voxel = None
                if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
                    voxel = None
                return volume, voxel
    return read_array(spec), None


def _open_volume(spec: str, stack: contextlib.ExitStack) -> tuple[Any, float | None]:
    """The volume as a sliceable array (an open HDF5 dataset when possible), voxel size in um.

    A reconstruction file (``/entry/reconstruction/data``) or ``file.h5:/dataset`` is read
    block by block from the file; other specs are read whole by ``read_array``.
    """
    match = re.match(r"^(.*\.(?:h5|hdf5|hdf|nxs|nx5))(?::(.*))?$", spec, re.IGNORECASE)
    if not (match and Path(match.group(1)).exists()):
        return read_array(spec), None
    path, inner = match.group(1), match.group(2) or ""
    f = stack.enter_context(open_hdf5(path, what="volume file"))
    voxel = None
    if inner in ("", RECONSTRUCTION_PATH, RECONSTRUCTION_PATH.lstrip("/")):
        ds = f.get(RECONSTRUCTION_PATH)
        if not isinstance(ds, h5py.Dataset):
            return read_array(spec), None  # not a reconstruction: the generic reader decides
        voxel = ds.attrs.get("voxel_size_um")
        try:
            voxel = float(voxel) if voxel is not None else None
        except (TypeError, ValueError):
            voxel = None
        if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
            voxel = None
        return ds, voxel
    ds = f.get(inner)
    if not isinstance(ds, h5py.Dataset):
        raise EngineInputError(f"{Path(path).name} has no dataset {inner}")
    return ds, None


def run_segment(
    input_spec: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    regions: int = 3,
    thickness_axis: int = 0,
    median_size: int = 3,
    mask_threshold: str | float | tuple[float, float] = "otsu",
    fill_radius: float = 11.0,
    opening_radius: float = 11.0,
    mask_downsample: int = 1,
    pore_smoothing: float | str = 0.7,
    unsharp_radius: float = 2.0,
    unsharp_amount: float = 1.0,
    pore_threshold: str | float = "otsu",
    current_collector: str = "end",
    voxel_size_um: float | None = None,
    block_voxels: int = DEFAULT_BLOCK_VOXELS,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Segment an XCT volume and write masks, porosity by region and profiles to HDF5.

    The volume is processed in blocks (:func:`analysis_engine.tomo.segment_stream.segment_streamed`,
    the same result as the whole-volume chain) and the masks are written block by block, so
    memory is bounded by ``block_voxels`` and the coarse electrode mask
    (``volume / mask_downsample**3`` voxels), not by the volume; use ``mask_downsample`` 2 or
    more for volumes of thousands of voxels across. Scratch files go to
    ``CORRELI_SCRATCH_DIR`` (else the system temporary directory).

    Parameters
    ----------
    input_spec : str or path
        Reconstruction file (``/entry/reconstruction/data``), ``file.h5:/dataset`` or any
        ``read_array`` spec.
    output_path : str or path
        HDF5 file to write (atomically: a failed run leaves nothing under this name).
    regions, thickness_axis, median_size, mask_threshold, fill_radius, opening_radius,
    mask_downsample, pore_smoothing, unsharp_radius, unsharp_amount, pore_threshold,
    current_collector
        See :func:`analysis_engine.tomo.segmentation.segment_electrode`.
    voxel_size_um : float, optional
        Voxel edge in micrometres; defaults to the reconstruction's ``voxel_size_um``
        attribute. Only used to express the volume profile's distances in um.
    block_voxels : int
        Voxels of one block of work, halo included (default 32 Mi: 128 MiB of float32); peak
        memory is a few times this.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``porosity``, ``porosity_by_region`` (fractions, region 1 first), ``region_bounds``,
        ``electrode_voxels``, ``shape``, ``thickness_axis``, ``mask_threshold``,
        ``pore_threshold``, ``voxel_size_um``.

    Raises
    ------
    EngineInputError
        Unreadable input, not a 3D volume, no electrode found, bad options.
    """
    report = progress or (lambda fraction, message: None)
    if int(block_voxels) < 1024:
        raise EngineInputError(f"block_voxels must be at least 1024, got {block_voxels}")
    report(0.0, f"reading {input_spec}")

    def chain_progress(fraction: float, message: str) -> None:
        report(0.02 + 0.9 * fraction, message)

    with contextlib.ExitStack() as stack:
        volume, file_voxel = _open_volume(str(input_spec), stack)
        voxel = voxel_size_um if voxel_size_um is not None else file_voxel
        if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
            raise EngineInputError(f"voxel_size_um must be a positive number, got {voxel}")
        shape = tuple(getattr(volume, "shape", ()))
        tmp = stack.enter_context(atomic_output(output_path))
        out = stack.enter_context(h5py.File(tmp, "w"))
        sinks = []
        if len(shape) == 3 and min(shape) > 0:
            chunks = (1, min(shape[1], 256), shape[2])
            sinks = [
                out.create_dataset(name, shape, dtype=np.uint8, chunks=chunks, compression="gzip")
                for name in ("/electrode_mask", "/pore_mask")
            ]
        result = segment_streamed(
            volume,
            *(sinks or (None, None)),
            regions=regions,
            thickness_axis=thickness_axis,
            median_size=median_size,
            mask_threshold_method=mask_threshold,
            fill_radius=fill_radius,
            opening_radius=opening_radius,
            mask_downsample=mask_downsample,
            pore_smoothing=pore_smoothing,
            unsharp_radius=unsharp_radius,
            unsharp_amount=unsharp_amount,
            pore_threshold=pore_threshold,
            current_collector=current_collector,
            block_voxels=int(block_voxels),
            progress=chain_progress,
        )
        stats, profile = result.regions, result.profile
        report(0.95, f"writing {output_path}")
        datasets: dict[str, Any] = {
            "/porosity_by_region": stats.porosity_by_region,
            "/lateral_porosity": stats.lateral_porosity,
            "/region_bounds": stats.region_bounds.astype(np.int64),
            "/electrode_voxels_by_region": stats.electrode_voxels_by_region,
            "/electrode_volume_profile/distance_voxels": profile.distance_voxels,
            "/electrode_volume_profile/electrode_voxels": profile.electrode_voxels,
            "/electrode_volume_profile/material_voxels": profile.material_voxels,
            "/electrode_volume_profile/material_fraction": profile.material_fraction,
        }
        if voxel is not None:
            datasets["/electrode_volume_profile/distance_um"] = profile.distance_voxels * voxel
        for name, value in datasets.items():
            arr = np.asarray(value)
            out.create_dataset(name, data=arr, compression="gzip" if arr.size >= 1024 else None)
        low, high = result.mask_threshold
        parameters = dict(result.parameters)
        parameters.pop("block_voxels", None)
        write_json_attrs(
            out,
            {
                "porosity": result.porosity,
                "regions": int(regions),
                "thickness_axis": result.thickness_axis,
                "mask_threshold_low": low,
                "mask_threshold_high": high,
                "pore_threshold": result.pore_threshold,
                "voxel_size_um": voxel,
                "parameters": parameters,
                "source": str(input_spec),
                "engine_version": __version__,
                "region_convention": "region 1 at index 0 of the thickness axis (separator side)",
            },
        )
        write_json_attrs(out["/electrode_volume_profile"], {"current_collector": current_collector})
    report(1.0, "segment done")
    return {
        "porosity": result.porosity,
        "porosity_by_region": [float(p) for p in stats.porosity_by_region],
        "region_bounds": [int(b) for b in stats.region_bounds],
        "electrode_voxels": result.electrode_voxels,
        "shape": list(result.shape),
        "thickness_axis": result.thickness_axis,
        "mask_threshold": [low, high if np.isfinite(high) else None],
        "pore_threshold": result.pore_threshold,
        "voxel_size_um": voxel,
    }


COMMANDS = (Command("segment", run_segment, inputs=("input_spec",)),)
