"""CLI commands ``register`` and ``correlate`` and the functions the platform's tasks call.

``run_register`` aligns any 2D image onto another (CONTRACTS.md ``register``).
``run_correlate`` is the whole correlative step of the paper for one cell and state: the
segmented XCT volume is split into depth regions, each collapsed to porosity/density maps on the
Compton grid, registered onto that region's Compton counts, overlaid with its Li map and
correlated pixel by pixel.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import open_hdf5, read_array, require_dataset, write_hdf5
from analysis_engine.registration.align import (
    DEFAULT_MIN_QUALITY,
    RegistrationError,
    SimilarityTransform2D,
    apply_transform,
    register_images,
)
from analysis_engine.registration.correlate import (
    correlate_maps,
    correlation_figure,
    li_gradient_pct,
    overlay,
)
from analysis_engine.registration.downsample import COMPTON_PIXEL_UM, region_maps

__all__ = ["register", "run_correlate", "run_register"]

Progress = Callable[[float, str], None] | None

TRANSFORM_CONVENTION = (
    "matrix maps moving (row, col, 1) pixel indices to fixed (row, col, 1); summary transform: "
    "p = c + scale * R(rotation) (q - c) + shift about the fixed image centre c, rotation "
    "positive from +x towards +y (row), shift_px = [dy, dx] in fixed pixels"
)


def _report(progress: Progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def _parse_transform(value) -> SimilarityTransform2D | None:
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
    moving_spec, fixed_spec
        ``file.h5:/dataset``, ``.npy`` or TIFF; e.g. an XCT porosity or density map and
        ``compton.h5:/compton_counts``. NaN marks pixels without data.
    output_path
        HDF5 file to write: ``/registered`` (moving resampled onto the fixed grid, NaN outside
        its footprint), ``/transform`` (3 x 3 matrix, moving (row, col, 1) -> fixed), with the
        summary as attributes of ``/transform``.
    moving_pixel_um, fixed_pixel_um
        Pixel sizes at the sample, um; read from a ``pixel_size_um``/``voxel_size_um``
        attribute when not given. Required when the images differ in size.
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
        transform=_parse_transform(transform),
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
    min_quality: float = DEFAULT_MIN_QUALITY,
    n_bins: int = 8,
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
        HDF5 file: per region ``/region_<k>/porosity``, ``/material_density`` (registered onto
        the Compton grid), ``/overlay`` (porosity times the Compton mask), ``/li_stoichiometry``,
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
        As for :func:`run_register`; a region whose registration fails raises.
    n_bins
        Bins of the porosity-Li trend.
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``regions``: per region the transform, ``quality``, ``pearson_r``, ``pearson_p``,
        ``spearman_rho``, ``spearman_p``, ``n``, ``porosity_mean``, ``li_mean``,
        ``xct_porosity`` (slab porosity before registration); ``li_gradient_pct`` (change of
        the mean Li from each region to the next), ``figures`` (Plotly JSON per region).

    Raises
    ------
    EngineInputError
        Missing datasets or voxel size, empty masks, failed registration, no overlap.
    """
    compton_paths = list(compton_paths)
    if not compton_paths:
        raise EngineInputError("give one Compton map file per depth region (at least one)")
    _report(progress, 0.0, "reading the segmented XCT volume")
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
        _report(progress, 0.1 + 0.8 * k / n_regions, f"region {k + 1}: registering")
        counts, li = _read_compton(path)
        density = maps.material_density[k]
        try:
            reg = register_images(
                density,
                counts,
                moving_pixel_um=compton_pixel_um,
                fixed_pixel_um=compton_pixel_um,
                allow_scale=allow_scale,
                transform=_parse_transform(per_region[k]),
                min_quality=min_quality,
            )
        except RegistrationError as exc:
            raise RegistrationError(f"region {k + 1}: {exc}") from None
        porosity = apply_transform(maps.porosity[k], counts.shape, reg.transform)
        density_reg = apply_transform(density, counts.shape, reg.transform)
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
    }
    _report(progress, 0.95, f"writing {Path(output_path).name}")
    write_hdf5(
        output_path,
        datasets,
        attrs={
            "/": {
                "convention": TRANSFORM_CONVENTION,
                "voxel_size_um": voxel,
                "compton_pixel_um": compton_pixel_um,
            }
        },
    )
    _report(progress, 1.0, "done")
    summary["figures"] = figures
    return summary


# ---------------------------------------------------------------------------------------------
# command line


def _cli_progress(fraction: float, message: str) -> None:
    from analysis_engine.cli import progress

    progress(message, fraction)


def _register_cmd(args: argparse.Namespace) -> dict:
    return run_register(
        args.moving,
        args.fixed,
        args.output,
        moving_pixel_um=args.moving_pixel_um,
        fixed_pixel_um=args.fixed_pixel_um,
        allow_scale=not args.no_scale,
        transform=args.transform,
        min_quality=args.min_quality,
        progress=_cli_progress,
    )


def _correlate_cmd(args: argparse.Namespace) -> dict:
    summary = run_correlate(
        args.xct,
        args.compton,
        args.output,
        voxel_size_um=args.voxel_size_um,
        thickness_axis=args.thickness_axis,
        compton_pixel_um=args.compton_pixel_um,
        transforms=args.transform,
        allow_scale=not args.no_scale,
        min_quality=args.min_quality,
        n_bins=args.bins,
        progress=_cli_progress,
    )
    summary.pop("figures", None)  # stored in the output file; keeps the JSON line short
    return summary


def register(subparsers) -> None:
    """Add the ``register`` and ``correlate`` sub-commands."""
    p = subparsers.add_parser(
        "register",
        help="align a moving 2D image (XCT map) onto a fixed one (Compton counts)",
        description="Rigid + isotropic-scale registration, robust to different contrast.",
    )
    p.add_argument("moving", help="moving image: file.h5:/path, .npy or TIFF")
    p.add_argument("fixed", help="fixed image, e.g. compton.h5:/compton_counts")
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--moving-pixel-um", type=float, default=None)
    p.add_argument("--fixed-pixel-um", type=float, default=None)
    p.add_argument("--no-scale", action="store_true", help="do not fit an isotropic scale")
    p.add_argument(
        "--transform",
        default=None,
        help='override, JSON: {"shift_px": [dy, dx], "rotation_deg": a, "scale": s}',
    )
    p.add_argument("--min-quality", type=float, default=DEFAULT_MIN_QUALITY)
    p.set_defaults(func=_register_cmd)

    c = subparsers.add_parser(
        "correlate",
        help="per-region porosity vs Li stoichiometry from a segmented XCT volume and Compton maps",
    )
    c.add_argument("xct", help="segmented XCT file (/pore_mask, /electrode_mask)")
    c.add_argument("compton", nargs="+", help="Compton map file per region, region 1 first")
    c.add_argument("-o", "--output", required=True, help="output HDF5 file")
    c.add_argument("--voxel-size-um", type=float, default=None)
    c.add_argument("--thickness-axis", type=int, default=0)
    c.add_argument("--compton-pixel-um", type=float, default=COMPTON_PIXEL_UM)
    c.add_argument("--transform", default=None, help="JSON transform, or list of one per region")
    c.add_argument("--no-scale", action="store_true")
    c.add_argument("--min-quality", type=float, default=DEFAULT_MIN_QUALITY)
    c.add_argument("--bins", type=int, default=8)
    c.set_defaults(func=_correlate_cmd)
