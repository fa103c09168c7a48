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

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine import __version__
from analysis_engine.errors import EngineInputError
from analysis_engine.io import nxtomo
from analysis_engine.io.common import read_array, write_hdf5
from analysis_engine.parameters import Command
from analysis_engine.tomo.segmentation import segment_electrode

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
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Segment an XCT volume and write masks, porosity by region and profiles to HDF5.

    Parameters
    ----------
    input_spec : str or path
        Reconstruction file (``/entry/reconstruction/data``) or any ``read_array`` spec.
    output_path : str or path
        HDF5 file to write (atomically: a failed run leaves nothing under this name).
    regions, thickness_axis, median_size, mask_threshold, fill_radius, opening_radius,
    mask_downsample, pore_smoothing, unsharp_radius, unsharp_amount, pore_threshold,
    current_collector
        See :func:`analysis_engine.tomo.segmentation.segment_electrode`.
    voxel_size_um : float, optional
        Voxel edge in micrometres; defaults to the reconstruction's ``voxel_size_um``
        attribute. Only used to express the volume profile's distances in um.
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
    report(0.0, f"reading {input_spec}")
    volume, file_voxel = read_volume(input_spec)
    voxel = voxel_size_um if voxel_size_um is not None else file_voxel
    if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
        raise EngineInputError(f"voxel_size_um must be a positive number, got {voxel}")

    def chain_progress(fraction: float, message: str) -> None:
        report(0.05 + 0.85 * fraction, message)

    result = segment_electrode(
        volume,
        regions=regions,
        thickness_axis=thickness_axis,
        median_size=median_size,
        mask_threshold=mask_threshold,
        fill_radius=fill_radius,
        opening_radius=opening_radius,
        mask_downsample=mask_downsample,
        pore_smoothing=pore_smoothing,
        unsharp_radius=unsharp_radius,
        unsharp_amount=unsharp_amount,
        pore_threshold=pore_threshold,
        current_collector=current_collector,
        progress=chain_progress,
    )
    stats, profile = result.regions, result.profile
    report(0.92, f"writing {output_path}")
    datasets: dict[str, Any] = {
        "/electrode_mask": result.electrode_mask.astype(np.uint8),
        "/pore_mask": result.pore_mask.astype(np.uint8),
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
    low, high = result.mask_threshold
    root_attrs = {
        "porosity": result.porosity,
        "regions": int(regions),
        "thickness_axis": result.thickness_axis,
        "mask_threshold_low": low,
        "mask_threshold_high": high,
        "pore_threshold": result.pore_threshold,
        "voxel_size_um": voxel,
        "parameters": result.parameters,
        "source": str(input_spec),
        "engine_version": __version__,
        "region_convention": "region 1 at index 0 of the thickness axis (separator side)",
    }
    write_hdf5(
        output_path,
        datasets,
        attrs={
            "/": root_attrs,
            "/electrode_volume_profile": {"current_collector": current_collector},
        },
    )
    report(1.0, "segment done")
    return {
        "porosity": result.porosity,
        "porosity_by_region": [float(p) for p in stats.porosity_by_region],
        "region_bounds": [int(b) for b in stats.region_bounds],
        "electrode_voxels": int(result.electrode_mask.sum()),
        "shape": list(result.electrode_mask.shape),
        "thickness_axis": result.thickness_axis,
        "mask_threshold": [low, high if np.isfinite(high) else None],
        "pore_threshold": result.pore_threshold,
        "voxel_size_um": voxel,
    }


COMMANDS = (Command("segment", run_segment, inputs=("input_spec",)),)
