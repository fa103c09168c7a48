"""Cathode microstructure phantoms with known porosity, and coin-cell grey-level volumes.

Geometry convention (shared by every consumer: reconstruction, segmentation, tortuosity,
registration and the digital twin):

* Volumes are indexed ``(z, y, x)``; ``z`` is the tomographic rotation axis (slice index).
* The electrode thickness runs along ``thickness_axis`` (default 0, i.e. ``z``). In the paper
  the coin cell lies flat in the beam: the cathode thickness is vertical, parallel to the
  rotation axis, and the cell was moved vertically to bring each depth region into the XCS-I
  sheet beam (Huang et al. 2022, Sec. 2.1 and Fig. 1b). Every function takes the axis as a
  parameter, so an upright cell works the same way.
* Depth region 1 (next to the separator) starts at index 0 of the thickness axis; region n
  (next to the current collector) ends at the far end. Regions are n equal slabs of the
  electrode's extent along the thickness axis (see
  :func:`analysis_engine.tomo.segmentation.region_bounds`).
* Masks are boolean arrays of the volume's shape; pores are ``True`` in ``pore_mask`` and the
  electrode (material and the pores inside it, the "filled volume") is ``True`` in
  ``electrode_mask``. Porosity is pore voxels / electrode voxels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from analysis_engine.errors import EngineInputError
from analysis_engine.tomo.segmentation import porosity_by_region, slab_bounds

__all__ = [
    "CathodePhantom",
    "DEFAULT_ATTENUATION",
    "dit_cathode",
    "slurry_cathode",
    "coin_cell_volume",
]

#: Linear attenuation coefficients (1/cm) near 115 keV used by :func:`coin_cell_volume`:
#: NMC811 electrode material at its packing density, liquid electrolyte in the pores and
#: around the electrode, the stainless-steel casing, and air outside the cell.
DEFAULT_ATTENUATION: Mapping[str, float] = {
    "material": 0.80,
    "pore": 0.20,
    "casing": 1.30,
    "outside": 0.0,
}


@dataclass(frozen=True, eq=False)
class CathodePhantom:
    """A binary cathode microstructure with its realised ground truth.

    Attributes
    ----------
    pore_mask : ndarray of bool, shape (z, y, x)
        ``True`` in pores (inside the electrode only).
    electrode_mask : ndarray of bool, shape (z, y, x)
        ``True`` in the filled electrode volume (material and its pores).
    porosity : float
        Realised overall porosity, pore voxels / electrode voxels (fraction, not %).
    porosity_by_region : tuple of float
        Realised porosity of each of the n equal depth slabs along ``thickness_axis``,
        region 1 first (index 0 of the axis).
    region_bounds : tuple of int
        The n + 1 slab boundaries (indices along ``thickness_axis``) the regions refer to.
    thickness_axis : int
        Axis along which the electrode thickness runs.
    kind : str
        ``"dit"`` (directional ice templating) or ``"slurry"`` (slurry cast).
    voxel_size_um : float
        Nominal voxel edge length in micrometres (metadata for consumers).
    """

    pore_mask: np.ndarray
    electrode_mask: np.ndarray
    porosity: float
    porosity_by_region: tuple[float, ...]
    region_bounds: tuple[int, ...]
    thickness_axis: int
    kind: str
    voxel_size_um: float

    @property
    def shape(self) -> tuple[int, ...]:
        """Volume shape ``(z, y, x)``."""
        return self.pore_mask.shape

    @property
    def solid_mask(self) -> np.ndarray:
        """Electrode material (electrode and not pore), boolean, volume shape."""
        return self.electrode_mask & ~self.pore_mask


def _check_shape(shape: Sequence[int], thickness_axis: int) -> tuple[tuple[int, int, int], int]:
    try:
        shape3 = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise EngineInputError(
            f"phantom shape must be three integers (z, y, x), got {shape!r}"
        ) from None
    if len(shape3) != 3 or min(shape3) < 8:
        raise EngineInputError(
            f"phantom shape must be three integers (z, y, x) of at least 8 each, got {shape!r}"
        )
    if thickness_axis not in (0, 1, 2, -1, -2, -3):
        raise EngineInputError(f"thickness_axis must be 0, 1 or 2, got {thickness_axis!r}")
    return shape3, thickness_axis % 3


def _electrode_footprint(
    shape: tuple[int, int, int], axis: int, footprint: str, padding: int
) -> np.ndarray:
    """Boolean electrode mask: a box or a disc whose axis is the thickness axis."""
    if footprint not in {"box", "disc"}:
        raise EngineInputError(f"footprint must be 'box' or 'disc', got {footprint!r}")
    padding = int(padding)
    if padding < 0 or 2 * padding >= min(shape) - 4:
        raise EngineInputError(
            f"padding {padding} leaves no electrode in a volume of shape {shape}"
        )
    moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    mask = np.zeros(moved, dtype=bool)
    t, h, w = moved
    if footprint == "box":
        mask[padding : t - padding, padding : h - padding, padding : w - padding] = True
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        radius = min(h, w) / 2.0 - padding
        disc = (yy - (h - 1) / 2.0) ** 2 + (xx - (w - 1) / 2.0) ** 2 <= radius**2
        mask[padding : t - padding] = disc
    return np.moveaxis(mask, 0, axis)


def _smooth_noise(
    shape: tuple[int, ...], sigma: float | Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Gaussian-filtered white noise scaled to zero mean and unit standard deviation."""
    field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    field -= field.mean()
    field /= field.std() + 1e-12
    return field


def _select_fraction(score: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` lowest-score voxels among ``allowed`` (exact count)."""
    out = np.zeros(score.shape, dtype=bool)
    idx = np.flatnonzero(allowed)
    count = int(min(max(count, 0), idx.size))
    if count == 0:
        return out
    chosen = idx[np.argpartition(score.ravel()[idx], count - 1)[:count]]
    out.ravel()[chosen] = True
    return out


def _finish(
    pore: np.ndarray,
    electrode: np.ndarray,
    *,
    regions: int,
    axis: int,
    kind: str,
    voxel_size_um: float,
) -> CathodePhantom:
    pore &= electrode
    stats = porosity_by_region(pore, electrode, regions=regions, thickness_axis=axis)
    return CathodePhantom(
        pore_mask=pore,
        electrode_mask=electrode,
        porosity=float(stats.porosity),
        porosity_by_region=tuple(float(p) for p in stats.porosity_by_region),
        region_bounds=tuple(int(b) for b in stats.region_bounds),
        thickness_axis=axis,
        kind=kind,
        voxel_size_um=float(voxel_size_um),
    )


def _profile_knots(length: int, targets: np.ndarray) -> np.ndarray:
    """Porosity per slice: piecewise linear through the slab centres, slab means = targets.

    The knot values are solved for so that the mean of each of the n equal slabs equals its
    target exactly (a small linear system), which gives a smooth gradient instead of steps.
    """
    n = targets.size
    bounds = slab_bounds(0, length, n)
    centres = (bounds[:-1] + bounds[1:] - 1) / 2.0
    t = np.arange(length)
    if n == 1:
        return np.full(length, targets[0])
    basis = np.stack([np.interp(t, centres, np.eye(n)[k]) for k in range(n)])  # (n, length)
    slab_means = np.stack(
        [basis[:, bounds[j] : bounds[j + 1]].mean(axis=1) for j in range(n)]
    )  # (n slabs, n knots)
    knots = np.linalg.solve(slab_means, targets)
    return np.clip(knots @ basis, 0.0, 0.95)


#: most of a slice's pore budget the bridges may take (the rest keeps the channels open)
BRIDGE_CAP = 0.7


def _edge_pixels(p: np.ndarray, q: np.ndarray, shape: tuple[int, int], width: int) -> np.ndarray:
    """Flat indices of a face-connected band ``width`` voxels wide along the segment p-q.

    The centre line is the pixels whose centre lies within 0.72 voxel of the segment (a
    4-connected one-voxel line); a ``width`` x ``width`` square dilation widens it.
    """
    h, w = shape
    margin = int(width) + 1
    y0 = max(int(np.floor(min(p[0], q[0]))) - margin, 0)
    x0 = max(int(np.floor(min(p[1], q[1]))) - margin, 0)
    y1 = min(int(np.ceil(max(p[0], q[0]))) + margin + 1, h)
    x1 = min(int(np.ceil(max(p[1], q[1]))) + margin + 1, w)
    if y0 >= y1 or x0 >= x1:
        return np.zeros(0, dtype=np.int64)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = q - p
    t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(float(d @ d), 1e-12), 0.0, 1.0)
    line = np.hypot(yy - (p[0] + t * d[0]), xx - (p[1] + t * d[1])) <= 0.72
    if width > 1:
        line = ndi.binary_dilation(line, structure=np.ones((width, width), dtype=bool))
    ys, xs = np.nonzero(line)
    return ((ys + y0) * w + (xs + x0)).astype(np.int64)


def _lattice_edges(
    lattice: Mapping[tuple[int, int], int],
    points: np.ndarray,
    keep: np.ndarray,
    stride: int,
    pixels_of,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Edges between lattice nodes ``stride`` steps apart along the three hexagonal directions.

    ``lattice`` maps lattice coordinates (i, j) to point indices, ``keep`` marks usable end
    points. An edge is the polyline through the ``stride - 1`` channel centres between its
    ends; returns the (E, 2) end-point indices and each edge's flat pixel indices.
    """
    ends: list[tuple[int, int]] = []
    pixels: list[np.ndarray] = []
    for (i, j), a in lattice.items():
        if not keep[a] or i % stride or j % stride:
            continue
        for di, dj in ((1, 0), (0, 1), (-1, 1)):
            path = [lattice.get((i + k * di, j + k * dj)) for k in range(stride + 1)]
            if any(p is None for p in path) or not keep[path[-1]]:
                continue
            parts = [
                pixels_of(points[p], points[q]) for p, q in zip(path[:-1], path[1:], strict=True)
            ]
            idx = np.unique(np.concatenate(parts))
            if idx.size:
                ends.append((a, path[-1]))
                pixels.append(idx)
    return np.array(ends, dtype=np.int64).reshape(-1, 2), pixels


def _place_edge(
    load: np.ndarray,
    room: np.ndarray,
    tall: int,
    cost: float,
    *,
    must: bool,
    rng: np.random.Generator,
) -> int | None:
    """Start slice (within the slab) of a bridge ``tall`` slices high: the least loaded one.

    Adds ``cost`` to ``load`` there. Without ``must``, only heights where every slice stays
    within ``room`` qualify, and None is returned when there is none.
    """
    starts = np.arange(load.size - tall + 1)
    fits = np.array([np.all(load[s : s + tall] + cost <= room[s : s + tall]) for s in starts])
    if not must and not fits.any():
        return None
    spans = np.array([load[s : s + tall].sum() for s in starts])
    spans = spans + rng.random(starts.size) * 0.5 + np.where(fits, 0.0, 1e12)
    s = int(starts[np.argmin(spans)])
    load[s : s + tall] += cost
    return s


def _bridge_layers(
    points: np.ndarray,
    lattice: Mapping[tuple[int, int], int],
    footprint: np.ndarray,
    *,
    width: int,
    height: int,
    stride: int,
    redundancy: float,
    slabs: Sequence[tuple[int, int]],
    budgets: Sequence[float],
    capacity: np.ndarray,
    fraction: float,
    n_slices: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Lateral bridges of every slice: flat indices into the (h, w) plane, one array per slice.

    Per depth slab, a random spanning tree over the channels on the sub-lattice of every
    ``stride``-th channel (centres inside ``footprint``; an edge runs through the channels
    between its ends) is opened first, so those channels, and the ones the bridges cross,
    are joined laterally to each other; then random bridges between nearest-neighbour channels
    until the bridges hold ``fraction`` of the slab's pore budget. Each open edge is a band
    ``width`` voxels wide and ``height`` slices tall inside the slab, placed at the height
    where the slices carry the least bridge volume so far (bridges spread evenly).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    h, w = footprint.shape
    empty = np.zeros(0, dtype=np.int64)
    if fraction <= 0 or len(points) < 2:
        return [empty] * n_slices
    iy = np.round(points[:, 0]).astype(np.int64)
    ix = np.round(points[:, 1]).astype(np.int64)
    on_grid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    keep = np.zeros(len(points), dtype=bool)
    keep[on_grid] = footprint[iy[on_grid], ix[on_grid]]
    inside = footprint.ravel()

    def pixels_of(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        idx = _edge_pixels(p, q, (h, w), width)
        return idx[inside[idx]]

    tree_ends, tree_pixels = _lattice_edges(lattice, points, keep, max(int(stride), 1), pixels_of)
    if stride > 1:
        near_ends, near_pixels = _lattice_edges(lattice, points, keep, 1, pixels_of)
    else:
        near_ends, near_pixels = tree_ends, tree_pixels
    if tree_ends.size == 0:
        return [empty] * n_slices
    nodes, compact = np.unique(tree_ends, return_inverse=True)
    compact = compact.reshape(-1, 2)
    tree_cost = np.array([p.size for p in tree_pixels], dtype=np.float64)
    near_cost = np.array([p.size for p in near_pixels], dtype=np.float64)
    layers: list[list[np.ndarray]] = [[] for _ in range(n_slices)]
    for (a, b), budget in zip(slabs, budgets, strict=True):
        tall = max(min(int(height), b - a), 1)
        weights = rng.random(len(tree_ends)) + 1e-6  # a zero weight would drop the edge
        graph = coo_matrix((weights, (compact[:, 0], compact[:, 1])), shape=(nodes.size,) * 2)
        tree = minimum_spanning_tree(graph)
        # the tree keeps (row, col) of the edges it uses; weights are distinct, so match them
        used = np.isin(weights, tree.data)
        load = np.zeros(b - a)
        room = np.asarray(capacity[a:b], dtype=np.float64)
        volume = 0.0

        # the tree always; then loops: a share of the other sub-lattice edges, so that lateral
        # paths do not hang on single bridges (a sub-volume of the slab still percolates);
        # then nearest-neighbour bridges up to the budget. Optional edges only where they fit.
        spare = np.flatnonzero(~used)
        queue = [
            (tree_pixels[e], tree_cost[e], True) for e in rng.permutation(np.flatnonzero(used))
        ]
        queue += [
            (tree_pixels[e], tree_cost[e], False)
            for e in rng.permutation(spare[rng.random(spare.size) < redundancy])
        ]
        queue += [(near_pixels[e], near_cost[e], None) for e in rng.permutation(len(near_ends))]
        for pixels, cost, must in queue:
            if must is None and volume >= fraction * budget:
                break
            s = _place_edge(load, room, tall, cost, must=bool(must), rng=rng)
            if s is None:
                continue
            for k in range(a + s, a + s + tall):
                layers[k].append(pixels)
            volume += cost * tall
    return [np.concatenate(layer) if layer else empty for layer in layers]


def dit_cathode(
    shape: Sequence[int],
    *,
    porosity_by_region: Sequence[float] = (0.333, 0.232, 0.096),
    thickness_axis: int = 0,
    channel_spacing: float = 12.0,
    channel_roughness: float = 0.6,
    secondary_porosity: float = 0.02,
    secondary_pore_size: float = 1.2,
    bridge_fraction: float = 0.3,
    bridge_height: int = 2,
    bridge_width: int = 2,
    bridge_stride: int = 1,
    bridge_loops: float = 0.25,
    footprint: str = "box",
    padding: int = 0,
    voxel_size_um: float = 7.91,
    seed: int | None = 0,
) -> CathodePhantom:
    """Directional-ice-templated (DIT) cathode: vertical pore channels widening with depth,
    joined laterally by thin bridges.

    Channels run along ``thickness_axis`` from a jittered hexagonal lattice in the lateral
    plane. In every slice the channel radius is chosen (as a quantile of the distance to the
    nearest channel centre, perturbed by a smooth random field for rough walls) so that the
    slice's porosity, counting a little random secondary porosity in the walls, equals a
    smooth depth profile whose mean over each of the n equal depth slabs is the target. The
    realised porosities therefore match the targets to within a voxel per slice.

    Ice-templated walls are not closed: dendritic ice leaves thin bridges between neighbouring
    lamellae/channels, which is what gives the paper's DIT a finite in-plane tortuosity
    (8.7 / 10.5 / 11.2 against 1.1 / 2.3 / 2.8 through-plane, Table 1). Here the bridges are
    bands ``bridge_width`` voxels wide and ``bridge_height`` slices tall along the edges of the
    channel lattice. Each depth region gets its own set, inside the region: first a random
    spanning tree over the channels of the sub-lattice of every ``bridge_stride``-th channel
    (an edge runs straight through the channels between its ends), so lateral percolation
    never depends on luck; then a share ``bridge_loops`` of the other sub-lattice edges
    (loops, so that a sub-volume of the region still percolates); then random
    nearest-neighbour bridges until the bridges hold ``bridge_fraction`` of the region's pore
    volume. Bridges are spread evenly over the region's slices, and optional ones are only
    opened where a slice can afford them (at most ``BRIDGE_CAP`` of its pore budget). The
    channels take the rest of each slice's budget, so per-slice porosity stays exact, and
    through-plane transport stays along the straight channels. Region 1
    (index 0 of the thickness axis, next to the separator) is the most porous in the paper:
    33.3 / 23.2 / 9.6 vol% (Huang et al. 2022, Table 1).

    Parameters
    ----------
    shape : sequence of 3 int
        Volume shape ``(z, y, x)`` in voxels.
    porosity_by_region : sequence of float
        Target porosity (fraction 0..1) of each depth region, region 1 first; its length sets
        the number of regions.
    thickness_axis : int
        Axis of the electrode thickness (0 = z, the rotation axis, as in the paper).
    channel_spacing : float
        Distance between neighbouring channel centres, voxels.
    channel_roughness : float
        Amplitude (voxels) of the smooth random perturbation of the channel walls.
    secondary_porosity : float
        Fraction of the wall material turned into small isotropic pores (0 for none).
    secondary_pore_size : float
        Gaussian smoothing length (voxels) of the secondary pore field; pores are a few times
        larger.
    bridge_fraction : float
        Share (0..0.9) of each region's pore volume the bridges hold at least, if the
        slices afford it (0: isolated vertical channels, no in-plane percolation). The
        spanning tree and loops are opened even when they hold more.
    bridge_height : int
        Slices a bridge spans along the thickness (2 by default: a bridge thinner than the
        XCT blur in every direction would not survive segmentation).
    bridge_width : int
        Bridge width in voxels (2 by default, for the same reason).
    bridge_stride : int
        The spanning tree joins every ``bridge_stride``-th channel along each lattice
        direction (1: every channel). A larger stride costs ``1 / stride`` of the pore volume:
        low-porosity regions of coarse phantoms cannot afford a tree over every channel.
    bridge_loops : float
        Share (0..1) of the non-tree sub-lattice edges opened as well.
    footprint : {"box", "disc"}
        Electrode shape: the whole (padded) box, or a disc (a coin-cell electrode) whose axis
        is the thickness axis.
    padding : int
        Empty voxels left on every side of the electrode (room for a casing).
    voxel_size_um : float
        Nominal voxel size in micrometres, stored as metadata (paper: 7.91 um).
    seed : int or None
        Random seed; the same seed gives the same phantom.

    Returns
    -------
    CathodePhantom
        Pore and electrode masks and the realised porosity per region (the ground truth).

    Raises
    ------
    EngineInputError
        Bad shape, porosity outside 0..0.9, or too few slices for the regions.
    """
    shape3, axis = _check_shape(shape, thickness_axis)
    targets = np.asarray(porosity_by_region, dtype=np.float64).ravel()
    if (
        targets.size < 1
        or np.any(~np.isfinite(targets))
        or np.any(targets < 0)
        or np.any(targets > 0.9)
    ):
        raise EngineInputError(
            f"porosity_by_region must be fractions between 0 and 0.9, got {porosity_by_region!r}"
        )
    if channel_spacing < 3:
        raise EngineInputError(f"channel_spacing must be at least 3 voxels, got {channel_spacing}")
    if not 0 <= bridge_fraction <= 0.9:
        raise EngineInputError(f"bridge_fraction must be a fraction 0..0.9, got {bridge_fraction}")
    if int(bridge_height) < 1:
        raise EngineInputError(f"bridge_height must be at least 1 slice, got {bridge_height}")
    if int(bridge_width) < 1:
        raise EngineInputError(f"bridge_width must be at least 1 voxel, got {bridge_width}")
    if not 0 <= bridge_loops <= 1:
        raise EngineInputError(f"bridge_loops must be a fraction 0..1, got {bridge_loops}")
    if int(bridge_stride) < 1:
        raise EngineInputError(f"bridge_stride must be at least 1, got {bridge_stride}")
    if not 0 <= secondary_porosity < 0.5:
        raise EngineInputError(
            f"secondary_porosity must be a fraction below 0.5, got {secondary_porosity}"
        )
    rng = np.random.default_rng(seed)
    electrode = _electrode_footprint(shape3, axis, footprint, padding)
    # Work with the thickness axis first: (t, h, w).
    elec_t = np.moveaxis(electrode, axis, 0)
    t_len, h, w = elec_t.shape
    occupied = np.flatnonzero(elec_t.any(axis=(1, 2)))
    first, last = int(occupied[0]), int(occupied[-1])
    if last - first + 1 < 2 * targets.size:
        raise EngineInputError(
            f"the electrode spans {last - first + 1} slices along the thickness axis: too few "
            f"for {targets.size} regions"
        )

    # Jittered hexagonal lattice of channel centres, distance to the nearest one per pixel.
    dy = channel_spacing * np.sqrt(3.0) / 2.0
    centres = np.zeros((h, w), dtype=bool)
    points = []
    lattice: dict[tuple[int, int], int] = {}  # hexagonal lattice coordinates -> point index
    for row, y0 in enumerate(np.arange(-dy, h + dy, dy)):
        x_offset = (row % 2) * channel_spacing / 2.0
        for col, x0 in enumerate(
            np.arange(-channel_spacing + x_offset, w + channel_spacing, channel_spacing)
        ):
            lattice[(col - 1 - row // 2, row)] = len(points)
            jy, jx = rng.normal(0.0, 0.12 * channel_spacing, size=2)
            iy, ix = int(round(y0 + jy)), int(round(x0 + jx))
            points.append((iy, ix))
            if 0 <= iy < h and 0 <= ix < w:
                centres[iy, ix] = True
    distance = ndi.distance_transform_edt(~centres).astype(np.float32)
    score = distance[None, :, :] + np.float32(channel_roughness) * _smooth_noise(
        (t_len, h, w), 2.0, rng
    )
    # the channel axis is pore in every slice (rough walls around a continuous core), so
    # the thinnest channels (region 3) still run through the thickness
    score[:, centres] = -1.0e3
    secondary = np.zeros((t_len, h, w), dtype=bool)
    if secondary_porosity > 0:
        field = _smooth_noise((t_len, h, w), secondary_pore_size, rng)
        secondary = field > np.quantile(field, 1.0 - secondary_porosity)

    profile = np.zeros(t_len)
    profile[first : last + 1] = _profile_knots(last - first + 1, targets)
    n_inside = elec_t.sum(axis=(1, 2))
    bounds = slab_bounds(first, last - first + 1, targets.size)
    slabs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    layers = _bridge_layers(
        np.asarray(points, dtype=np.float64),
        lattice,
        elec_t[first : last + 1].any(axis=0),
        width=int(bridge_width),
        height=int(bridge_height),
        stride=int(bridge_stride),
        redundancy=float(bridge_loops),
        slabs=slabs,
        budgets=[float((profile[a:b] * n_inside[a:b]).sum()) for a, b in slabs],
        capacity=BRIDGE_CAP * profile * n_inside,
        fraction=float(bridge_fraction),
        n_slices=t_len,
        rng=rng,
    )
    trim = rng.random((h, w))  # which bridge voxels go first when a slice cannot afford all
    pore_t = np.zeros((t_len, h, w), dtype=bool)
    for k in range(first, last + 1):
        inside = elec_t[k]
        wanted = int(round(profile[k] * n_inside[k]))
        extra = secondary[k] & inside
        need = wanted - int(extra.sum())
        if need < 0:  # secondary pores alone exceed the target: thin them out
            pore_t[k] = _select_fraction(-score[k], extra, wanted)
            continue
        bridges = np.zeros(h * w, dtype=bool)
        bridges[layers[k]] = True
        bridges = bridges.reshape(h, w) & inside & ~extra
        n_bridge = int(bridges.sum())
        if n_bridge > int(BRIDGE_CAP * need):  # too thin a slice for its bridges
            n_bridge = int(BRIDGE_CAP * need)
            bridges = _select_fraction(trim, bridges, n_bridge)
        channels = _select_fraction(score[k], inside & ~extra & ~bridges, need - n_bridge)
        pore_t[k] = channels | bridges | extra
    pore = np.moveaxis(pore_t, 0, axis)
    return _finish(
        np.ascontiguousarray(pore),
        electrode,
        regions=targets.size,
        axis=axis,
        kind="dit",
        voxel_size_um=voxel_size_um,
    )


def slurry_cathode(
    shape: Sequence[int],
    *,
    porosity: float = 0.25,
    regions: int = 3,
    thickness_axis: int = 0,
    pore_size: float = 2.0,
    network: str = "blob",
    calendering: float = 1.0,
    footprint: str = "box",
    padding: int = 0,
    voxel_size_um: float = 7.91,
    seed: int | None = 0,
) -> CathodePhantom:
    """Slurry-cast (SC) cathode: a random pore network of uniform porosity.

    Gaussian-filtered white noise thresholded at its exact quantile inside the electrode,
    slice by slice along the thickness axis, so every slice and hence every region holds
    ``porosity`` to one voxel per slice (paper SC: 25 vol%, uniform through the depth).

    Parameters
    ----------
    shape : sequence of 3 int
        Volume shape ``(z, y, x)`` in voxels.
    porosity : float
        Target overall porosity (fraction 0..0.9).
    regions : int
        Number of equal depth slabs the realised ``porosity_by_region`` reports.
    thickness_axis : int
        Axis of the electrode thickness.
    pore_size : float
        Gaussian smoothing length in voxels (in-plane); pores and walls are roughly 2-3
        times wider.
    network : {"blob", "sheet"}
        ``"blob"``: pores are the lowest field values (isolated-looking blobs that percolate
        in 3D above ~16 % but not in a slab only a few correlation lengths thick, where
        the set is nearly 2D). ``"sheet"``: pores are the field values closest to zero, a
        thickened random zero-level surface, i.e. the gaps between particle agglomerates
        (the field's positive and negative domains); it is bicontinuous and percolates in
        every direction even in a thin slab (in 2D the sets ``field > c`` and
        ``field < -c`` are both sub-critical, so their complement spans).
    calendering : float
        Ratio of in-plane to through-thickness correlation length (>= 1): calendering
        flattens the particles and pores into the plane, so through-plane tortuosity
        exceeds in-plane (paper SC: y-z 11.1-14.8 vs x-y 9.6-11.3). 1 is isotropic.
    footprint, padding, voxel_size_um, seed
        As in :func:`dit_cathode`.

    Returns
    -------
    CathodePhantom

    Raises
    ------
    EngineInputError
        Bad shape, porosity outside 0..0.9, unknown network or calendering below 1.
    """
    shape3, axis = _check_shape(shape, thickness_axis)
    if not 0 <= porosity <= 0.9:
        raise EngineInputError(f"porosity must be a fraction between 0 and 0.9, got {porosity}")
    if int(regions) < 1:
        raise EngineInputError(f"regions must be at least 1, got {regions}")
    if pore_size <= 0:
        raise EngineInputError(f"pore_size must be positive, got {pore_size}")
    if network not in {"blob", "sheet"}:
        raise EngineInputError(f"network must be 'blob' or 'sheet', got {network!r}")
    if not calendering >= 1.0:
        raise EngineInputError(f"calendering must be at least 1, got {calendering}")
    rng = np.random.default_rng(seed)
    electrode = _electrode_footprint(shape3, axis, footprint, padding)
    sigma = [float(pore_size)] * 3
    sigma[axis] = float(pore_size) / float(calendering)
    field = np.moveaxis(_smooth_noise(shape3, sigma, rng), axis, 0)
    if network == "sheet":
        field = np.abs(field)  # lowest |field|: a shell around the zero-level surface
    elec_t = np.moveaxis(electrode, axis, 0)
    pore_t = np.zeros(elec_t.shape, dtype=bool)
    # Threshold slice by slice along the thickness: a small phantom holds only a few
    # correlation volumes per region, and one global threshold would leave the regions
    # several vol% apart; the per-slice thresholds vary smoothly and keep it isotropic.
    for k in range(elec_t.shape[0]):
        inside = elec_t[k]
        if inside.any():
            pore_t[k] = _select_fraction(field[k], inside, int(round(porosity * inside.sum())))
    pore = np.ascontiguousarray(np.moveaxis(pore_t, 0, axis))
    return _finish(
        pore, electrode, regions=int(regions), axis=axis, kind="slurry", voxel_size_um=voxel_size_um
    )


def coin_cell_volume(
    phantom: CathodePhantom,
    *,
    casing: bool = True,
    casing_thickness: int = 2,
    attenuation: Mapping[str, float] | None = None,
    blur_sigma: float = 0.7,
    noise: float = 0.1,
    seed: int | None = 0,
) -> np.ndarray:
    """Grey-level XCT volume of the phantom inside a coin cell, as a reconstruction shows it.

    Electrode material is mid grey, pores and the electrolyte around the electrode dark, the
    stainless-steel casing a bright shell (a cylinder wall around the thickness axis plus the
    two end caps, drawn in the phantom's padding) and air outside the casing black. The volume
    is then blurred (Gaussian point spread) and Gaussian noise is added.

    Parameters
    ----------
    phantom : CathodePhantom
        From :func:`dit_cathode` or :func:`slurry_cathode`. For ``casing=True`` it needs
        ``padding`` larger than ``casing_thickness`` (a ``"disc"`` footprint looks like a real
        cell).
    casing : bool
        Draw the casing; without it the electrolyte fills everything outside the electrode.
    casing_thickness : int
        Casing wall thickness in voxels.
    attenuation : mapping, optional
        Linear attenuation coefficients (1/cm) for ``"material"``, ``"pore"`` (electrolyte),
        ``"casing"`` and ``"outside"``; missing keys take :data:`DEFAULT_ATTENUATION`.
    blur_sigma : float
        Standard deviation of the Gaussian blur, voxels (0 for none).
    noise : float
        Standard deviation of the additive Gaussian noise as a fraction of the
        material-pore contrast (0 for none).
    seed : int or None
        Random seed of the noise.

    Returns
    -------
    ndarray of float32, shape (z, y, x)
        Linear attenuation coefficient per voxel, 1/cm (before noise).

    Raises
    ------
    EngineInputError
        Unknown attenuation keys, negative blur/noise, or a casing that would cut the electrode.
    """
    coeff = dict(DEFAULT_ATTENUATION)
    if attenuation:
        unknown = set(attenuation) - set(coeff)
        if unknown:
            raise EngineInputError(
                f"unknown attenuation keys {sorted(unknown)}; expected {sorted(coeff)}"
            )
        coeff.update({k: float(v) for k, v in attenuation.items()})
    if blur_sigma < 0 or noise < 0:
        raise EngineInputError("blur_sigma and noise must be zero or positive")
    electrode = phantom.electrode_mask
    shape = electrode.shape
    axis = phantom.thickness_axis
    volume = np.full(shape, coeff["pore"], dtype=np.float32)
    volume[phantom.solid_mask] = coeff["material"]
    if casing:
        moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
        t, h, w = moved
        c = int(casing_thickness)
        if c < 1:
            raise EngineInputError(f"casing_thickness must be at least 1, got {casing_thickness}")
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.sqrt((yy - (h - 1) / 2.0) ** 2 + (xx - (w - 1) / 2.0) ** 2)
        r_out = min(h, w) / 2.0 - 0.5
        inside_casing = np.broadcast_to(r <= r_out, moved).copy()
        shell = np.broadcast_to((r <= r_out) & (r > r_out - c), moved).copy()
        shell[:c] = inside_casing[:c]
        shell[t - c :] = inside_casing[t - c :]
        inside_casing = np.moveaxis(inside_casing, 0, axis)
        shell = np.moveaxis(shell, 0, axis)
        if np.any(shell & electrode):
            raise EngineInputError(
                "the casing would cut into the electrode: make the phantom with padding larger "
                f"than casing_thickness={c} (and a 'disc' footprint for a coin cell)"
            )
        volume[~inside_casing] = coeff["outside"]
        volume[shell] = coeff["casing"]
    if blur_sigma > 0:
        volume = ndi.gaussian_filter(volume, blur_sigma, mode="nearest")
    if noise > 0:
        rng = np.random.default_rng(seed)
        sigma = noise * abs(coeff["material"] - coeff["pore"])
        volume += rng.normal(0.0, sigma, size=shape).astype(np.float32)
    return volume.astype(np.float32, copy=False)
