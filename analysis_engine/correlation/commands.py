"""The ``correlate`` command: Li stoichiometry against XCT porosity, region by region.

:func:`run_correlate` is the whole correlative step of the paper for one cell and state: the
segmented XCT volume is split into depth regions, each collapsed to porosity/density maps on the
Compton grid, registered onto that region's Compton counts, overlaid with its Li map and
correlated pixel by pixel. The platform's tasks call it as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.compton.geometry import geometry_from_mapping
from analysis_engine.correlation.correlate import (
    correlate_maps,
    correlation_figure,
    li_gradient_pct,
    overlay,
)
from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5, read_json, require_dataset, write_hdf5
from analysis_engine.parameters import Command
from analysis_engine.registration.align import (
    DEFAULT_MIN_QUALITY,
    RegistrationError,
    SimilarityTransform2D,
    apply_transform,
    register_images,
)
from analysis_engine.registration.commands import TRANSFORM_CONVENTION, parse_transform
from analysis_engine.registration.downsample import COMPTON_PIXEL_UM, region_maps

__all__ = ["COMMANDS", "run_correlate"]

Progress = Callable[[float, str], None] | None

#: A Compton pixel belongs to the cathode footprint of a region when at least this fraction of
#: its column through the region's slab is electrode (material and pores).
DEFAULT_CATHODE_FRACTION = 0.5


def _read_segmentation(xct_path: str | Path):
    with open_hdf5(xct_path, what="segmented XCT file") as f:
        pore = require_dataset(f, "/pore_mask", what="segmented XCT file")[()]
        electrode = require_dataset(f, "/electrode_mask", what="segmented XCT file")[()]
        voxel = None
        for obj in (f["/pore_mask"], f["/electrode_mask"], f):
            if "voxel_size_um" in obj.attrs:
                voxel = float(np.asarray(obj.attrs["voxel_size_um"]).ravel()[0])
                break
    return pore, electrode, voxel


def _read_compton(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with open_hdf5(path, what="Compton map file") as f:
        counts = require_dataset(f, "/compton_counts", what="Compton map file")[()]
        li = require_dataset(f, "/li_stoichiometry", what="Compton map file")[()]
    if counts.shape != li.shape or counts.ndim != 2:
        raise EngineInputError(
            f"{Path(path).name}: /compton_counts {counts.shape} and /li_stoichiometry "
            f"{li.shape} must be 2D maps of the same shape"
        )
    if not np.isfinite(li).any():
        raise EngineInputError(f"{Path(path).name}: the Li map is empty (no pixel in the mask)")
    return counts.astype(np.float64), li.astype(np.float64)


def run_correlate(
    xct_path: str | Path,
    compton_paths: Sequence[str | Path],
    output_path: str | Path,
    *,
    voxel_size_um: float | None = None,
    thickness_axis: int = 0,
    compton_pixel_um: float = COMPTON_PIXEL_UM,
    transforms: Sequence | dict | str | None = None,
    allow_scale: bool = True,
    geometry: dict | str | None = None,
    min_quality: float = DEFAULT_MIN_QUALITY,
    n_bins: int = 8,
    cathode_fraction: float = DEFAULT_CATHODE_FRACTION,
    progress: Progress = None,
) -> dict:
    """Correlate Li stoichiometry with XCT porosity region by region (``correlate`` CLI).

    Parameters
    ----------
    xct_path
        Segmented XCT file (``segment`` output): ``/pore_mask``, ``/electrode_mask``, (z, y, x).
    compton_paths
        One Compton map file (``compton`` output: ``/compton_counts``, ``/li_stoichiometry``)
        per depth region, region 1 (separator side, index 0 of the thickness axis) first.
        The number of files sets the number of regions.
    output_path
        HDF5 file: per region ``/region_<k>/porosity``, ``/material_density``,
        ``/electrode_fraction``, ``/non_solid_fraction`` (registered onto the Compton grid;
        the last is 1 - material density, the pores plus the electrolyte beside the electrode
        in the pixel's column, which a masked ``compton --porosity`` run takes),
        ``/cathode_mask`` (uint8 on
        the Compton grid, 1 where ``electrode_fraction >= cathode_fraction``: the registered
        XCT cathode footprint that a masked ``compton --mask`` run uses), ``/overlay``
        (porosity times the Compton mask), ``/li_stoichiometry``,
        ``/pairs`` (n, 2) [porosity, Li], ``/transform`` (3 x 3), ``/xct_porosity``,
        ``/xct_material_density`` (before registration), plus ``/li_gradient_pct``. The Plotly
        figures are returned in the summary, not written.
    voxel_size_um
        XCT voxel size; read from a ``voxel_size_um`` attribute when not given.
    thickness_axis
        Axis of the XCT volume along the electrode thickness.
    compton_pixel_um
        Compton pixel size at the sample (0.27 mm).
    transforms
        User override: one transform dict (all regions) or a list with one per region
        (None entries are fitted), or JSON text of either.
    allow_scale, min_quality
        As for :func:`analysis_engine.registration.commands.run_register`; a region whose
        registration fails raises.
    geometry
        The XCS-I pinhole geometry (as for ``compton --geometry``: a mapping or a JSON file).
        When given, the Compton pixel at the sample is known from the magnification, pitch *
        sample_to_pinhole / pinhole_to_detector: it replaces ``compton_pixel_um`` and the
        registration scale is fixed at 1 (``allow_scale`` is not used).
    n_bins
        Bins of the porosity-Li trend.
    cathode_fraction
        Electrode volume fraction of a Compton pixel's column through the slab (0..1] from
        which the pixel is inside the region's cathode footprint (``/region_<k>/cathode_mask``).
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``regions``: per region the transform, ``quality``, ``pearson_r``, ``pearson_p``,
        ``spearman_rho``, ``spearman_p``, ``n``, ``porosity_mean``, ``li_mean``,
        ``xct_porosity`` (slab porosity before registration), ``cathode_pixels`` (pixels in the
        footprint); ``li_gradient_pct`` (change of
        the mean Li from each region to the next), ``figures`` (Plotly JSON per region).

    Raises
    ------
    EngineInputError
        Missing datasets or voxel size, empty masks, failed registration, no overlap, a
        cathode fraction outside (0, 1], an empty cathode footprint.
    """
    report = progress or (lambda fraction, message: None)
    if not (0.0 < cathode_fraction <= 1.0):
        raise EngineInputError(
            f"cathode_fraction must be a volume fraction in (0, 1], got {cathode_fraction}"
        )
    pixel_source = "given"
    if geometry is not None:
        geo = (
            geometry_from_mapping(geometry)
            if isinstance(geometry, dict)
            else geometry_from_mapping(read_json(geometry, what="geometry file"))
        )
        compton_pixel_um = 1000.0 * geo.pixel_at_sample_mm
        allow_scale = False
        pixel_source = "pinhole magnification (pitch * sample_to_pinhole / pinhole_to_detector)"
    compton_paths = list(compton_paths)
    if not compton_paths:
        raise EngineInputError("give one Compton map file per depth region (at least one)")
    report(0.0, "reading the segmented XCT volume")
    pore, electrode, voxel_attr = _read_segmentation(xct_path)
    voxel = voxel_size_um if voxel_size_um is not None else voxel_attr
    if voxel is None:
        raise EngineInputError(
            "the XCT voxel size is unknown: the file has no voxel_size_um attribute, "
            "give --voxel-size-um (7.91 um in the paper)"
        )
    n_regions = len(compton_paths)
    if isinstance(transforms, str):
        try:
            transforms = json.loads(transforms)
        except json.JSONDecodeError as exc:
            raise EngineInputError(f"transforms must be JSON: {exc}") from None
    if transforms is None or isinstance(transforms, dict | SimilarityTransform2D):
        per_region = [transforms] * n_regions
    else:
        per_region = list(transforms)
        if len(per_region) != n_regions:
            raise EngineInputError(
                f"{len(per_region)} transforms given for {n_regions} regions: give one per region"
            )
    maps = region_maps(
        pore,
        electrode,
        voxel_size_um=voxel,
        thickness_axis=thickness_axis,
        n_regions=n_regions,
        pixel_size_um=compton_pixel_um,
    )
    datasets: dict[str, np.ndarray] = {}
    regions_out, figures, li_means = [], {}, []
    for k, path in enumerate(compton_paths):
        name = f"region_{k + 1}"
        report(0.1 + 0.8 * k / n_regions, f"region {k + 1}: registering")
        counts, li = _read_compton(path)
        density = maps.material_density[k]
        try:
            reg = register_images(
                density,
                counts,
                moving_pixel_um=compton_pixel_um,
                fixed_pixel_um=compton_pixel_um,
                allow_scale=allow_scale,
                transform=parse_transform(per_region[k]),
                min_quality=min_quality,
            )
        except RegistrationError as exc:
            raise RegistrationError(f"region {k + 1}: {exc}") from None
        porosity = apply_transform(maps.porosity[k], counts.shape, reg.transform)
        density_reg = apply_transform(density, counts.shape, reg.transform)
        fraction_reg = apply_transform(maps.electrode_fraction[k], counts.shape, reg.transform)
        cathode = np.nan_to_num(fraction_reg, nan=0.0) >= cathode_fraction
        if not cathode.any():
            raise EngineInputError(
                f"region {k + 1}: no Compton pixel is at least {cathode_fraction:g} electrode "
                "after registration: the cathode footprint is empty"
            )
        over = overlay(porosity, li)
        try:
            corr = correlate_maps(over, li, n_bins=n_bins)
        except EngineInputError as exc:
            raise EngineInputError(f"region {k + 1}: {exc}") from None
        li_means.append(float(np.nanmean(li)))
        figures[name] = correlation_figure(corr)
        datasets.update(
            {
                f"/{name}/porosity": porosity,
                f"/{name}/material_density": density_reg,
                f"/{name}/electrode_fraction": fraction_reg,
                # what compton's electrolyte/binder correction takes (``porosity``): the pores
                # plus the electrolyte beside the electrode in the pixel's column
                f"/{name}/non_solid_fraction": np.clip(1.0 - density_reg, 0.0, 1.0),
                f"/{name}/cathode_mask": cathode.astype(np.uint8),
                f"/{name}/overlay": over,
                f"/{name}/li_stoichiometry": li,
                f"/{name}/pairs": np.column_stack([corr.x, corr.y]),
                f"/{name}/transform": reg.matrix,
                f"/{name}/xct_porosity": maps.porosity[k],
                f"/{name}/xct_material_density": density,
            }
        )
        regions_out.append(
            {
                "region": k + 1,
                **reg.summary(),
                **{
                    key: value
                    for key, value in corr.to_dict().items()
                    if key not in ("trend", "density", "x_mean", "y_mean")
                },
                "porosity_mean": corr.x_mean,
                "li_mean": li_means[-1],
                "xct_porosity": float(maps.porosity_by_region[k]),
                "cathode_pixels": int(cathode.sum()),
                "trend": corr.to_dict()["trend"],
            }
        )
    gradient = li_gradient_pct(li_means) if n_regions > 1 else []
    datasets["/li_gradient_pct"] = np.asarray(gradient, dtype=np.float64)
    summary = {
        "regions": regions_out,
        "li_gradient_pct": gradient,
        "porosity_by_region": maps.porosity_by_region.tolist(),
        "voxel_size_um": voxel,
        "compton_pixel_um": compton_pixel_um,
        "compton_pixel_source": pixel_source,
        "scale_fitted": bool(allow_scale),
        "cathode_fraction": cathode_fraction,
    }
    report(0.95, f"writing {Path(output_path).name}")
    write_hdf5(
        output_path,
        datasets,
        attrs={
            "/": {
                "convention": TRANSFORM_CONVENTION,
                "voxel_size_um": voxel,
                "compton_pixel_um": compton_pixel_um,
                "cathode_fraction": cathode_fraction,
            }
        },
    )
    report(1.0, "done")
    summary["figures"] = figures
    return summary


def _without_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures are in the result for the platform; the CLI's JSON line stays short."""
    return {key: value for key, value in summary.items() if key != "figures"}


COMMANDS = (
    Command(
        "correlate",
        run_correlate,
        inputs=("xct_path", "compton_paths"),
        cli_summary=_without_figures,
    ),
)
