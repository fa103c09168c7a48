"""Input checks and pore-cluster selection shared by the transport solvers (private)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from analysis_engine.errors import EngineInputError

#: fewest voxels along the transport axis for a meaningful solve
MIN_VOXELS_ALONG_AXIS = 3


def pore_mask(volume: np.ndarray, *, pore_value: float | None = None) -> np.ndarray:
    """Boolean 3D pore mask from a binary or labelled volume.

    Binary volumes (bool, or exactly the values {0, v}) use pore = nonzero; a volume with other
    values needs ``pore_value`` naming the pore label.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise EngineInputError(f"expected a 3D volume (z, y, x), got an array of shape {vol.shape}")
    if vol.size == 0:
        raise EngineInputError(f"volume is empty (shape {vol.shape})")
    if vol.dtype == bool:
        mask = vol
    elif pore_value is not None:
        mask = vol == pore_value
        if not mask.any():
            raise EngineInputError(
                f"no voxel has the pore value {pore_value!r}: the pore phase is empty"
            )
    else:
        if not np.issubdtype(vol.dtype, np.number):
            raise EngineInputError(f"volume has non-numeric dtype {vol.dtype}")
        values = np.unique(vol) if vol.size <= 2_000_000 else _few_unique(vol)
        if values.size > 2 or (values.size == 2 and values[0] != 0):
            shown = ", ".join(f"{v:g}" for v in values[:6]) + (" ..." if values.size > 6 else "")
            raise EngineInputError(
                f"volume is not binary (values {shown}); segment it first or name the pore "
                "phase with pore_value (--pore-value)"
            )
        mask = vol != 0
    if not mask.any():
        raise EngineInputError("the pore phase is empty: no nonzero (pore) voxel in the volume")
    return np.ascontiguousarray(mask, dtype=bool)


def _few_unique(vol: np.ndarray) -> np.ndarray:
    """np.unique that gives up early (returns 3 values) on obviously non-binary big volumes."""
    head = np.unique(vol.reshape(-1)[:100_000])
    if head.size > 2:
        return head
    return np.unique(vol)


def check_axis(mask: np.ndarray, axis: int) -> int:
    if not isinstance(axis, int | np.integer) or not -3 <= int(axis) < 3:
        raise EngineInputError(f"axis must be 0, 1 or 2 (z, y, x), got {axis!r}")
    axis = int(axis) % 3
    if mask.shape[axis] < MIN_VOXELS_ALONG_AXIS:
        raise EngineInputError(
            f"volume is too thin along axis {axis}: {mask.shape[axis]} voxels, at least "
            f"{MIN_VOXELS_ALONG_AXIS} needed"
        )
    return axis


def connected_clusters(mask_axis_first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pores connected (6-connectivity) to both faces, and pores connected to the inlet face.

    ``mask_axis_first`` has the transport axis first; the inlet is index 0.
    """
    labels, _ = ndimage.label(mask_axis_first)
    inlet_labels = np.unique(labels[0])
    outlet_labels = np.unique(labels[-1])
    inlet_labels = inlet_labels[inlet_labels > 0]
    outlet_labels = outlet_labels[outlet_labels > 0]
    both = np.intersect1d(inlet_labels, outlet_labels)
    # label lookup tables: much faster than np.isin on large label volumes
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[both] = True
    percolating = keep[labels]
    keep[:] = False
    keep[inlet_labels] = True
    from_inlet = keep[labels]
    return percolating, from_inlet
