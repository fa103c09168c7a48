"""XCT depth slabs collapsed to 2D maps on the Compton pixel grid (area-weighted, exact).

The paper (Experimental Section, "Correlating XCT with XCS-I") splits the segmented electrode
into 3 equal depth slabs, converts each to a 2D image and downsamples it to the field of view
and pixel size of the Compton image (0.27 mm at the sample) before registration. Here the
downsampling is by exact area overlap: every fine pixel contributes to each coarse pixel in
proportion to the area they share, so sums (pore volume, electrode volume) are conserved to
rounding error for any ratio of pixel sizes, integer or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = [
    "COMPTON_PIXEL_UM",
    "RegionMaps",
    "area_weights",
    "area_weighted_sum",
    "region_bounds",
    "region_maps",
]

#: Size of one XCS-I pixel at the sample (250 um detector pitch through the pinhole).
COMPTON_PIXEL_UM = 270.0


def area_weights(
    n_fine: int, fine_pixel: float, coarse_pixel: float, *, origin: float = 0.0
) -> np.ndarray:
    """1D overlap matrix between a fine and a coarse grid of pixels.

    Parameters
    ----------
    n_fine
        Number of fine pixels along the axis.
    fine_pixel, coarse_pixel
        Pixel sizes in the same unit (e.g. um). Any ratio, not only integers.
    origin
        Position of the fine grid's first edge in the coarse grid's frame, same unit; the
        coarse grid starts at 0.

    Returns
    -------
    weights : ndarray, shape (n_coarse, n_fine), float64
        ``weights[i, j]`` is the fraction of fine pixel ``j`` that lies inside coarse pixel
        ``i``. ``n_coarse`` is just enough to cover every fine pixel, so each column sums to 1
        and ``weights @ v`` conserves ``v.sum()``.
    """
    if n_fine < 1:
        raise EngineInputError("cannot downsample an empty axis")
    if not (fine_pixel > 0 and coarse_pixel > 0):
        raise EngineInputError(
            f"pixel sizes must be positive, got fine {fine_pixel} and coarse {coarse_pixel}"
        )
    if origin < 0:
        raise EngineInputError("the fine grid must start inside the coarse grid (origin >= 0)")
    fine_lo = origin + np.arange(n_fine) * fine_pixel
    fine_hi = fine_lo + fine_pixel
    n_coarse = int(np.ceil(fine_hi[-1] / coarse_pixel - 1e-9))
    coarse_lo = np.arange(n_coarse)[:, None] * coarse_pixel
    overlap = np.minimum(fine_hi[None, :], coarse_lo + coarse_pixel) - np.maximum(
        fine_lo[None, :], coarse_lo
    )
    return np.clip(overlap, 0.0, None) / fine_pixel


def area_weighted_sum(
    image: np.ndarray, fine_pixel_um: float, coarse_pixel_um: float
) -> np.ndarray:
    """Sum a fine 2D (or stacked, ``(..., H, W)``) image into coarse pixels by area overlap.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        Extensive quantity per fine pixel (a voxel count, a volume). NaN is not allowed.
    fine_pixel_um, coarse_pixel_um
        Pixel sizes of the input and output grids (square pixels), um.

    Returns
    -------
    ndarray, shape (..., ceil(H * r), ceil(W * r)) with r = fine / coarse
        Coarse sums; ``result.sum()`` equals ``image.sum()`` to rounding error.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim < 2:
        raise EngineInputError(f"expected a 2D image, got shape {image.shape}")
    wy = area_weights(image.shape[-2], fine_pixel_um, coarse_pixel_um)
    wx = area_weights(image.shape[-1], fine_pixel_um, coarse_pixel_um)
    return wy @ image @ wx.T


def region_bounds(
    electrode_mask: np.ndarray, *, n_regions: int, axis: int
) -> list[tuple[int, int]]:
    """Split the electrode's extent along the thickness axis into equal depth regions.

    Parameters
    ----------
    electrode_mask : ndarray, 3D, bool or 0/1
        Electrode voxels (material and pores).
    n_regions
        Number of depth regions (3 in the paper).
    axis
        Thickness axis; region 1 starts at the low-index end (next to the separator).

    Returns
    -------
    list of (start, stop)
        Half-open index ranges along ``axis``, one per region, as equal as integers allow.
    """
    electrode = np.asarray(electrode_mask) != 0
    if electrode.ndim != 3:
        raise EngineInputError(
            f"the electrode mask must be a 3D volume, got shape {electrode.shape}"
        )
    if n_regions < 1:
        raise EngineInputError(f"the number of regions must be at least 1, got {n_regions}")
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(electrode.any(axis=other))
    if present.size == 0:
        raise EngineInputError("the electrode mask is empty: no electrode voxel to correlate")
    lo, hi = int(present[0]), int(present[-1]) + 1
    if hi - lo < n_regions:
        raise EngineInputError(
            f"the electrode is only {hi - lo} voxels thick along axis {axis}: "
            f"cannot split it into {n_regions} regions"
        )
    edges = np.round(np.linspace(lo, hi, n_regions + 1)).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class RegionMaps:
    """Per-region XCT maps on the Compton grid (all arrays shape (n_regions, H, W)).

    Attributes
    ----------
    porosity
        Pore volume / electrode volume in each coarse pixel column of the slab (0..1); NaN
        where the pixel holds less than ``min_electrode_fraction`` of electrode.
    material_density
        Solid (electrode minus pore) volume fraction of the whole pixel column of the slab
        (0..1, 0 outside the electrode): proportional to what the Compton counts see.
    pore_volume_um3, electrode_volume_um3
        Extensive volumes per coarse pixel, um^3; their totals equal the XCT totals.
    electrode_fraction
        Electrode (material and pores) volume fraction of the whole pixel column of the slab
        (0..1, 0 outside the electrode): how much of what a Compton pixel sees is cathode.
    pixel_size_um
        Coarse pixel size (the Compton pixel at the sample).
    bounds
        (start, stop) voxel index range of each region along the thickness axis.
    """

    porosity: np.ndarray
    material_density: np.ndarray
    pore_volume_um3: np.ndarray
    electrode_volume_um3: np.ndarray
    electrode_fraction: np.ndarray
    pixel_size_um: float
    bounds: tuple[tuple[int, int], ...]

    @property
    def porosity_by_region(self) -> np.ndarray:
        """Slab porosity of each region, pore volume / electrode volume (n_regions,)."""
        return self.pore_volume_um3.sum(axis=(1, 2)) / self.electrode_volume_um3.sum(axis=(1, 2))


def region_maps(
    pore_mask: np.ndarray,
    electrode_mask: np.ndarray,
    *,
    voxel_size_um: float,
    thickness_axis: int = 0,
    n_regions: int = 3,
    pixel_size_um: float = COMPTON_PIXEL_UM,
    min_electrode_fraction: float = 0.05,
) -> RegionMaps:
    """Collapse each depth slab of a segmented XCT volume to porosity/density maps.

    Parameters
    ----------
    pore_mask, electrode_mask : ndarray, shape (z, y, x), uint8 or bool
        Segmentation (``segment`` output, docs/formats.md); pores outside the electrode are ignored.
    voxel_size_um
        XCT voxel size, um (7.91 um in the paper).
    thickness_axis
        Axis along the electrode thickness; the two remaining axes, in their order, become
        the (row, col) axes of the maps.
    n_regions
        Number of equal depth regions (region 1 at index 0 of the thickness axis).
    pixel_size_um
        Target pixel size (Compton pixel at the sample, 270 um by default).
    min_electrode_fraction
        Porosity is NaN in coarse pixels whose electrode volume is below this fraction of the
        pixel column volume (edge pixels holding a sliver of electrode are unreliable).

    Returns
    -------
    RegionMaps

    Raises
    ------
    EngineInputError
        Shapes differ, the volume is not 3D, the electrode mask is empty, bad sizes.
    """
    pore = np.asarray(pore_mask)
    electrode = np.asarray(electrode_mask)
    if pore.shape != electrode.shape or pore.ndim != 3:
        raise EngineInputError(
            f"pore mask {pore.shape} and electrode mask {electrode.shape} must be 3D volumes "
            "of the same shape"
        )
    if thickness_axis not in (0, 1, 2, -1, -2, -3):
        raise EngineInputError(f"thickness axis must be 0, 1 or 2, got {thickness_axis}")
    thickness_axis %= 3
    if voxel_size_um is None or not voxel_size_um > 0:
        raise EngineInputError("the XCT voxel size (um) is required and must be positive")
    electrode = electrode != 0
    pore = (pore != 0) & electrode
    bounds = region_bounds(electrode, n_regions=n_regions, axis=thickness_axis)
    voxel_volume = float(voxel_size_um) ** 3
    pore_cols, electrode_cols, thickness = [], [], []
    for start, stop in bounds:
        sl = [slice(None)] * 3
        sl[thickness_axis] = slice(start, stop)
        pore_cols.append(pore[tuple(sl)].sum(axis=thickness_axis, dtype=np.float64))
        electrode_cols.append(electrode[tuple(sl)].sum(axis=thickness_axis, dtype=np.float64))
        thickness.append(stop - start)
    pore_vol = area_weighted_sum(np.stack(pore_cols) * voxel_volume, voxel_size_um, pixel_size_um)
    electrode_vol = area_weighted_sum(
        np.stack(electrode_cols) * voxel_volume, voxel_size_um, pixel_size_um
    )
    # Volume of each coarse pixel column actually covered by the XCT field of view.
    coverage = (
        area_weighted_sum(np.ones(pore_cols[0].shape), voxel_size_um, pixel_size_um)
        * voxel_size_um**2
    )
    column_volume = coverage[None] * (np.asarray(thickness, float) * voxel_size_um)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        porosity = pore_vol / electrode_vol
        density = np.where(column_volume > 0, (electrode_vol - pore_vol) / column_volume, 0.0)
        fraction = np.where(column_volume > 0, electrode_vol / column_volume, 0.0)
    enough = electrode_vol >= min_electrode_fraction * column_volume
    porosity = np.where(enough & (electrode_vol > 0), porosity, np.nan)
    return RegionMaps(
        porosity=porosity,
        material_density=density,
        pore_volume_um3=pore_vol,
        electrode_volume_um3=electrode_vol,
        electrode_fraction=np.clip(fraction, 0.0, 1.0),
        pixel_size_um=float(pixel_size_um),
        bounds=tuple(bounds),
    )
