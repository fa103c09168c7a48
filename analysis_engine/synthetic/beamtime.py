"""Digital twin of the beamtime of Huang et al. 2022: every file of the experiment, with truth.

:func:`make_beamtime` writes one consistent synthetic beamtime into a directory: two coin cells
(a directional-ice-templated "DIT" and a slurry-cast "SC" NMC811 cathode), each measured by XCT
and by XCS-I (HEXITEC Compton imaging, 3 depth regions) in the charged and the discharged
state, plus their cycling and EIS tables, a ``manifest.yaml`` (read by the platform's
``import_beamtime``) and ``ground_truth.json`` holding every planted value.

Geometry
--------
* Volumes are (z, y, x); z is the rotation axis AND the electrode thickness (the cell lies
  flat and is moved vertically between XCS-I depth regions). Region 1 (separator side) starts
  at z index 0; regions are 3 equal slabs of the electrode thickness
  (:func:`analysis_engine.tomo.segmentation.slab_bounds`).
* The XCT detector rows cover exactly the cathode thickness (the vertical field of view is set
  on the cathode), so every reconstructed slice holds electrode: a disc of electrode inside the
  stainless-steel casing wall, electrolyte around it, air outside.
* The XCT voxel is an integer fraction of the Compton pixel (0.27 mm): ``small`` 67.5 um
  (1/4), ``paper`` 33.75 um (1/8), so block averaging the XCT maps onto the Compton pixel size
  is exact. The XCT lateral map is placed on the 80 x 80 Compton grid by a planted similarity
  transform in the convention of :mod:`analysis_engine.registration.align` (the map, brought
  to 0.27 mm pixels, is centred on the Compton grid centre ``c = (39.5, 39.5)``; a map point
  ``q`` lands at ``c + R(theta) (q - c) + shift``, ``shift = (dy, dx)`` Compton pixels).
* ``small``: DIT and SC are both 1.0125 mm thick (15 slices): a 300 um SC cathode would be
  4 slices at 67.5 um, too thin for 3 depth regions (``paper`` keeps 300 um = 9 slices).
  ``paper`` uses the paper's acquisition: 3600 projections over 360 deg, off-centre
  (half-acquisition) on a detector about half the sample's width, and realistic counts; its
  electrode is still a scaled-down disc (7.91 um voxels would need GBs per scan).

Microstructure
--------------
DIT: :func:`analysis_engine.synthetic.phantom.dit_cathode` with per-region porosity 33.3 /
23.2 / 9.6 % (Table 1) and vertical channels joined per depth region by 2 x 2 voxel lateral
bridges (a spanning tree plus loops, so every region percolates in-plane). The twin's
``pipeline_parameters`` give the segment stage a mask closing that fills the channels and a
pore threshold half-way between the electrolyte and NMC grey levels. SC: :func:`slurry_cathode`,
25 %, a calendered sheet network (``network="sheet"``, ``pore_size=4``, ``calendering=2.5``)
that percolates through-plane and in-plane in every 5-slice region with similar tau (a
thresholded blob network of that porosity is nearly 2D in so thin a slab and does not span it
in-plane). The charged and discharged scans of a cell show the same microstructure with
independent noise.

Li stoichiometry and spectra
----------------------------
Per region r and state s the planted Li stoichiometry (1 - x) of Compton pixel i is
``L_rs (1 + k (phi_i - mean phi))`` (``k`` = :data:`LI_POROSITY_SENSITIVITY` per unit
porosity, deviations clipped at +-0.3 and re-centred; ``phi`` is the slab's porosity on the
Compton grid smoothed by a 1-pixel Gaussian: the small twin's channels are coarser than a
Compton pixel), so Li is higher where porosity is
higher and its mean over the electrode pixels (coverage >= 0.5) is exactly ``L_rs``: Table 2
for DIT (charged 0.10/0.03/0.00, discharged 0.76/0.73/0.61); for SC (not in the paper) a
weaker gradient, charged 0.06/0.05/0.04, discharged 0.72/0.70/0.68. S per pixel follows the
default calibration S = 0.650 + 2.309 (1 - x). Compton photons per pixel are proportional to
the electrode material in it (coverage x (1 - phi)). ``truth_maps.h5`` holds the planted
coverage, porosity, Li and S maps on the Compton grid and each cell's pore and electrode
masks (z, y, x) as scanned. Each pixel's true spectrum is the
two-Gaussian profile of :mod:`analysis_engine.synthetic.compton` whose S, as the ``compton``
stage measures it at 0.8 keV FWHM without background, equals the planted S, plus the 115 keV
elastic line, Cd/Te fluorescence (23.2/26.1/27.5/31.0 keV), W/Pb fluorescence (58-85 keV) and a
flat background from 5 to 85 keV. Background is NOT put under the Compton windows (89.5 -
98.4 keV): the engine subtracts none, so the planted S stays what the chain should measure.
The detector model (:func:`analysis_engine.synthetic.hexitec.generate_events`) adds 0.8 keV
FWHM resolution, charge sharing (5 % to one neighbour, 1 % to two), pile-up and a 5 keV
threshold, and writes ADU through a per-pixel gain/offset stored in the file.
``ground_truth.json`` also gives ``s_summed_expected`` / ``li_summed_expected``: S (and
1 - x) of the noise-free summed spectrum of the region, the value ``compton``'s ``s_total``
estimates (charge sharing biases it by well under 1 %).

Tables (CSV, see :mod:`analysis_engine.io.tables`)
-----------------------------------------------------
``cycling``: ``cycle`` (1..200), ``c_rate`` (C, 0.5), ``charge_capacity_mah_g``,
``discharge_capacity_mah_g`` (mAh/g), ``coulombic_efficiency_pct`` (%), ``overpotential_v``
(V). DIT: first cycle 190 / 188 mAh/g, Coulombic efficiency 99.6 % after cycle 1, 90 %
retention after 200 cycles, overpotential 0.20 V. SC: 182 / 180 mAh/g, 99.6 %, 88 %, 0.23 V.
``eis``: ``frequency_hz`` (Hz, 100 kHz to 10 mHz, 10 per decade), ``z_real_ohm``,
``z_imag_ohm`` (ohm, measured sign: negative = capacitive), from R_e + (R_CT || C) + Warburg
(:mod:`analysis_engine.electrochem.eis`) with the Warburg coefficient of the paper's
D_overall (6.3e-11 DIT, 3.4e-11 SC cm^2/s; 12 mm disc, 1 M Li+), 0.5 % noise.

Files
-----
``xct/<cell>_<state>.nxs`` (NXtomo), ``xcsi/<cell>_<state>_region<r>.h5`` (HEXITEC events,
ADU + calibration), ``echem/<cell>_cycling.csv``, ``echem/<cell>_eis.csv``,
``manifest.yaml``, ``ground_truth.json``, ``truth_maps.h5`` (not in the manifest).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import ndimage as ndi

from analysis_engine.compton.calibration import DEFAULT_CALIBRATION
from analysis_engine.compton.matrix import DEFAULT_COMPOSITION
from analysis_engine.electrochem.eis import randles_warburg_impedance, warburg_from_diffusivity
from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import atomic_output, write_hdf5
from analysis_engine.io.hexitec import Calibration, write_hexitec_events
from analysis_engine.io.spectra import add_instrument
from analysis_engine.io.tables import write_table
from analysis_engine.synthetic.hexitec import generate_events, random_calibration
from analysis_engine.synthetic.phantom import (
    DEFAULT_ATTENUATION,
    coin_cell_volume,
    dit_cathode,
    slurry_cathode,
)
from analysis_engine.synthetic.projections import write_synthetic_nxtomo
from analysis_engine.synthetic.xcsi import (
    COMPTON_ENERGY_KEV,
    DEEP_FRACTION,
    DETECTOR_BASE_FWHM_KEV,
    REFERENCE_FWHM_KEV,
    TWIN_GEOMETRY,
    WIDTHS_AU,
    ComponentBank,
    planted_s,
    resolution_map,
    valence_weight,
    window_integrals,
)
from analysis_engine.tomo.segmentation import porosity_by_region, slab_bounds

__all__ = [
    "CELLS",
    "SIZES",
    "TWIN_VERSION",
    "LI_POROSITY_SENSITIVITY",
    "TwinSize",
    "CellSpec",
    "region_maps",
    "planted_li_map",
    "planted_li_independent",
    "make_beamtime",
]

#: Bumped whenever the planted data change, so that a twin cached on disk is regenerated.
TWIN_VERSION = 4
#: Relative change of Li stoichiometry per unit porosity deviation (Li higher where porous).
LI_POROSITY_SENSITIVITY = 1.5
#: Gaussian smoothing (Compton pixels) of the porosity map that the planted Li follows.
LI_SMOOTHING_PX = 1.0
COMPTON_ROWS = COMPTON_COLS = 80
COMPTON_PIXEL_UM = 270.0
#: Width (Compton pixels) of the electrolyte-filled ring around the cathode footprint.
OUTSIDE_RING_PX = 3
STATES = ("charged", "discharged")
#: W and Pb fluorescence (keV, relative weight) from the pinhole and shielding.
# (Pb K-beta 84.9 keV would fall in the background side bands: real data need the bands moved)
SHIELDING_LINES_KEV = {58.0: 0.2, 59.3: 0.35, 67.2: 0.15, 72.8: 0.1, 75.0: 0.15}
#: Cd/Te fluorescence of the CdZnTe detector (keV, relative weight).
DETECTOR_LINES_KEV = {23.2: 0.40, 26.1: 0.08, 27.5: 0.42, 31.0: 0.10}


@dataclass(frozen=True)
class CellSpec:
    """What is planted in one cell."""

    key: str
    name: str
    sample: str
    fabrication_method: str
    thickness_um_paper: float
    porosity_by_region: tuple[float, float, float]
    li: dict[str, tuple[float, float, float]]
    charge_mah_g: float
    discharge_mah_g: float
    retention_200_pct: float
    overpotential_v: float
    d_overall_cm2_s: float
    r_e_ohm: float
    r_ct_ohm: float
    c_dl_f: float


CELLS: dict[str, CellSpec] = {
    "dit": CellSpec(
        key="dit",
        name="DIT-1",
        sample="NMC811 DIT cathode",
        fabrication_method="dit",
        thickness_um_paper=1000.0,
        porosity_by_region=(0.333, 0.232, 0.096),
        li={"charged": (0.10, 0.03, 0.00), "discharged": (0.76, 0.73, 0.61)},
        charge_mah_g=190.0,
        discharge_mah_g=188.0,
        retention_200_pct=90.0,
        overpotential_v=0.20,
        d_overall_cm2_s=6.3e-11,
        r_e_ohm=3.0,
        r_ct_ohm=40.0,
        c_dl_f=2.0e-5,
    ),
    "sc": CellSpec(
        key="sc",
        name="SC-1",
        sample="NMC811 slurry-cast cathode",
        fabrication_method="slurry",
        thickness_um_paper=300.0,
        porosity_by_region=(0.25, 0.25, 0.25),
        li={"charged": (0.06, 0.05, 0.04), "discharged": (0.72, 0.70, 0.68)},
        charge_mah_g=182.0,
        discharge_mah_g=180.0,
        retention_200_pct=88.0,
        overpotential_v=0.23,
        d_overall_cm2_s=3.4e-11,
        r_e_ohm=3.5,
        r_ct_ohm=60.0,
        c_dl_f=2.0e-5,
    ),
}


@dataclass(frozen=True)
class TwinSize:
    """Scale of a twin: XCT geometry, scan and Compton counting statistics."""

    name: str
    block: int  # XCT voxels per Compton pixel (lateral)
    lateral_voxels: int  # XCT volume width (y and x)
    disc_padding: int  # voxels between the electrode disc and the volume edge
    thickness_voxels: dict[str, int]
    channel_spacing: float
    n_angles: int
    scan_range_deg: float
    half_acquisition: bool
    incident_counts: float
    compton_counts: float  # expected Compton photons of a full electrode pixel
    frames: int
    pixel_block_rows: int  # Compton rows generated at once (bounds memory)
    # DIT lateral bridges (see dit_cathode): 2 x 2 voxel bands (thinner ones do not survive
    # the XCT blur and segmentation), a spanning tree per region over every
    # ``bridge_stride``-th channel plus a share ``bridge_loops`` of the other such edges
    bridge_height: int = 2
    bridge_stride: int = 1
    bridge_loops: float = 0.25
    # the segment stage's electrode-mask closing radius (voxels): closes the DIT channels (at
    # most ~6 voxels across) yet stays below half the electrolyte gap to the casing
    # (disc_padding - casing_thickness - 1)
    mask_fill_radius: float = 2.0

    @property
    def voxel_um(self) -> float:
        return COMPTON_PIXEL_UM / self.block


SIZES: dict[str, TwinSize] = {
    "small": TwinSize(
        name="small",
        block=4,
        lateral_voxels=192,
        disc_padding=14,  # 9.5 voxels of electrolyte between electrode and casing
        thickness_voxels={"dit": 15, "sc": 15},
        n_angles=300,
        scan_range_deg=180.0,
        half_acquisition=False,
        incident_counts=5.0e4,
        compton_counts=1000.0,
        frames=2_000_000,
        pixel_block_rows=20,
        # region 1 channels ~6 voxels across (closed by the mask's fill ball); bridges join every
        # 3rd channel (a tree + half the other such edges): region 3 (9.6 %) affords them and
        # keeps ~4 vol% in its channels, and every region percolates laterally
        channel_spacing=10.0,
        bridge_stride=3,
        bridge_loops=0.5,
        mask_fill_radius=3.0,
    ),
    # for tests: a quarter of the small twin's pixels' counts, a coarse scan
    "tiny": TwinSize(
        name="tiny",
        block=4,
        lateral_voxels=96,
        disc_padding=6,
        thickness_voxels={"dit": 12, "sc": 12},
        channel_spacing=12.0,
        n_angles=90,
        scan_range_deg=180.0,
        half_acquisition=False,
        incident_counts=5.0e4,
        compton_counts=400.0,
        frames=200_000,
        pixel_block_rows=40,
    ),
    "paper": TwinSize(
        name="paper",
        block=8,
        lateral_voxels=384,
        disc_padding=16,
        thickness_voxels={"dit": 30, "sc": 9},
        channel_spacing=12.0,
        n_angles=3600,
        scan_range_deg=360.0,
        half_acquisition=True,
        incident_counts=2.0e4,
        compton_counts=20_000.0,
        frames=6_480_000,  # 12 min at 9 kHz
        pixel_block_rows=8,
    ),
}

#: Transform planted between the XCT lateral map and the Compton grid.
PLANTED_TRANSFORM = {"shift_px": [3.4, -2.7], "rotation_deg": 2.5, "scale": 1.0}


def _phantom(spec: CellSpec, size: TwinSize, seed: int):
    """Padded phantom (for the casing) and the z range of the electrode."""
    pad = size.disc_padding
    t = size.thickness_voxels[spec.key]
    shape = (t + 2 * pad, size.lateral_voxels, size.lateral_voxels)
    common = {
        "footprint": "disc",
        "padding": pad,
        "voxel_size_um": size.voxel_um,
        "seed": seed,
    }
    if spec.fabrication_method == "dit":
        phantom = dit_cathode(
            shape,
            porosity_by_region=spec.porosity_by_region,
            channel_spacing=size.channel_spacing,
            secondary_porosity=0.0,
            bridge_height=size.bridge_height,
            bridge_stride=size.bridge_stride,
            bridge_loops=size.bridge_loops,
            **common,
        )
    else:
        # a sheet network (gaps between agglomerates), calendered: in a 5-slice region slab
        # the blob network (pore_size 1.5) did not percolate in-plane (tau = inf); this one
        # does, nearly isotropically (phantom tau ~3-4 both ways), and its 4 x 1.6 voxel
        # correlation survives the 67.5 um XCT blur (recovered porosity within ~1 vol%)
        phantom = slurry_cathode(
            shape,
            porosity=spec.porosity_by_region[0],
            pore_size=4.0,
            network="sheet",
            calendering=2.5,
            **common,
        )
    return phantom, slice(pad, pad + t)


def region_maps(
    pore: np.ndarray, electrode: np.ndarray, *, regions: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per depth region: electrode coverage and pore fraction of each (y, x) column.

    Parameters
    ----------
    pore, electrode : ndarray of bool, shape (z, y, x)
        Masks whose z extent is exactly the electrode thickness (region 1 at z = 0).

    Returns
    -------
    coverage : ndarray, shape (regions, y, x)
        Electrode voxels / slab voxels per column (0..1).
    pore_fraction : ndarray, shape (regions, y, x)
        Pore voxels / slab voxels per column.
    bounds : ndarray of int, shape (regions + 1,)
        Slab boundaries along z.
    """
    bounds = np.asarray(slab_bounds(0, pore.shape[0], regions))
    cov = np.stack(
        [electrode[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    )
    por = np.stack([pore[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return cov, por, bounds


def _to_compton_grid(
    fine: np.ndarray, block: int, transform: dict, shape=(COMPTON_ROWS, COMPTON_COLS)
) -> np.ndarray:
    """Resample fine (n, Y, X) maps (XCT voxels) onto the Compton grid, area-averaged.

    Each Compton pixel averages ``block x block`` sub-samples mapped back through the planted
    transform (bilinear, zero outside the XCT map).
    """
    n, h, w = fine.shape
    c = np.array([(shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0])
    mc = np.array([(h / block - 1) / 2.0, (w / block - 1) / 2.0])  # map centre, coarse px
    theta = np.deg2rad(transform["rotation_deg"])
    scale = transform.get("scale", 1.0)
    dy, dx = transform["shift_px"]
    sub = (np.arange(block) + 0.5) / block - 0.5
    rows = (np.arange(shape[0])[:, None] + sub[None, :]).ravel()
    cols = (np.arange(shape[1])[:, None] + sub[None, :]).ravel()
    py, px = np.meshgrid(rows, cols, indexing="ij")
    # Invert p = c + s R (q - c) + shift with R = [[cos, -sin], [sin, cos]] in (x, y).
    vx, vy = px - c[1] - dx, py - c[0] - dy
    qx = (np.cos(theta) * vx + np.sin(theta) * vy) / scale
    qy = (-np.sin(theta) * vx + np.cos(theta) * vy) / scale
    fy = (qy + mc[0] + 0.5) * block - 0.5  # coarse map px -> fine voxel index
    fx = (qx + mc[1] + 0.5) * block - 0.5
    out = np.empty((n, *shape))
    for k in range(n):
        vals = ndi.map_coordinates(fine[k], [fy, fx], order=1, mode="constant", cval=0.0)
        out[k] = vals.reshape(shape[0], block, shape[1], block).mean(axis=(1, 3))
    return out


def planted_li_map(
    mean_li: float,
    porosity: np.ndarray,
    electrode_pixels: np.ndarray,
    *,
    sensitivity: float = LI_POROSITY_SENSITIVITY,
) -> np.ndarray:
    """Li stoichiometry per pixel following the porosity, with mean ``mean_li`` exactly.

    ``li = mean_li (1 + k dev)`` with ``dev`` the porosity deviation from its mean over
    ``electrode_pixels``, clipped at +-0.3 and re-centred; NaN where porosity is NaN.
    """
    phi = np.asarray(porosity, dtype=np.float64)
    inside = electrode_pixels & np.isfinite(phi)
    if not inside.any():
        raise EngineInputError("no electrode pixels to plant Li stoichiometry on")
    dev = np.clip(phi - phi[inside].mean(), -0.3, 0.3)
    dev -= dev[inside].mean()
    return mean_li * (1.0 + sensitivity * dev)


def planted_li_independent(
    mean_li: float, porosity: np.ndarray, electrode_pixels: np.ndarray, *, seed: int
) -> np.ndarray:
    """Li stoichiometry per pixel uncorrelated with porosity (the null cell), mean ``mean_li``.

    A smooth random field (Gaussian-filtered white noise, 2 pixels), with its linear component
    along the porosity map removed over the electrode pixels (so the planted correlation is
    exactly zero), scaled to +-15 % relative standard deviation.
    """
    rng = np.random.default_rng(seed)
    phi = np.asarray(porosity, dtype=np.float64)
    field = ndi.gaussian_filter(rng.standard_normal(phi.shape), 2.0)
    inside = np.asarray(electrode_pixels, dtype=bool) & np.isfinite(phi)
    if not inside.any():
        raise EngineInputError("no electrode pixels to plant Li stoichiometry on")
    p = phi[inside] - phi[inside].mean()
    f = field[inside] - field[inside].mean()
    if p @ p > 0:
        f = f - (f @ p) / (p @ p) * p
    out = np.zeros(phi.shape)
    out[inside] = f / max(f.std(), 1e-12)
    return mean_li * (1.0 + 0.15 * np.clip(out, -2.5, 2.5))


def _other_spectrum(energy: np.ndarray) -> dict[str, np.ndarray]:
    """Unit-sum shapes of the non-Compton components on ``energy`` (uniform centres)."""
    step = energy[1] - energy[0]

    def lines(table):
        out = np.zeros_like(energy)
        for e, weight in table.items():
            out[int(round((e - energy[0]) / step))] += weight
        return out / out.sum()

    # multiple scattering and casing continuum: falls off linearly to the elastic line
    inside = (energy >= 50.0) & (energy < 112.0)
    flat = np.where(inside, 1.0 - 0.004 * (energy - 50.0), 0.0)
    elastic = np.zeros_like(energy)
    elastic[int(round((115.0 - energy[0]) / step))] = 1.0
    return {
        "elastic": elastic,
        "detector": lines(DETECTOR_LINES_KEV),
        "shielding": lines(SHIELDING_LINES_KEV),
        "flat": flat / flat.sum(),
    }


def _events_for_region(
    weight_valence: np.ndarray,
    n_cathode: np.ndarray,
    n_other: np.ndarray,
    *,
    bank: ComponentBank,
    fwhm: np.ndarray,
    size: TwinSize,
    gain: np.ndarray,
    offset: np.ndarray,
    seed: int,
    frames: int,
) -> dict[str, np.ndarray]:
    """Event list (frame, row, col, adu) of one region: Compton photons of the cathode and of
    the other phases (per-pixel angle, resolution and tailing: :mod:`.xcsi`) plus background."""
    other_e = np.arange(4.0, 125.0, 0.1) + 0.05
    shapes = _other_spectrum(other_e)
    rows = n_cathode.shape[0]
    parts: dict[str, list[np.ndarray]] = {"frame": [], "row": [], "col": [], "adu": []}
    compton = n_cathode + n_other
    material = n_cathode / max(size.compton_counts, 1.0)
    # background photons: the continuum is about 3 % of the Compton peak height under the peak
    other_counts = {
        "elastic": 0.08 * compton,
        "detector": 0.10 * compton + 2.0,
        "shielding": 0.08 * compton + 5.0 * (material > 0),
        "flat": 0.6 * compton + 10.0,
    }
    gen = {
        "n_frames": frames,
        "fwhm_kev": DETECTOR_BASE_FWHM_KEV,
        "sharing_fraction": 0.05,
        "triple_fraction": 0.01,
        "threshold_kev": 5.0,
    }
    block = size.pixel_block_rows
    for b, r0 in enumerate(range(0, rows, block)):
        r1 = min(rows, r0 + block)
        sub_gain, sub_offset = gain[r0:r1], offset[r0:r1]
        true = bank.spectra(weight_valence[r0:r1], n_cathode[r0:r1], n_other[r0:r1], fwhm[r0:r1])
        ev = generate_events(
            COMPTON_ENERGY_KEV,
            true,
            rows=r1 - r0,
            cols=n_cathode.shape[1],
            gain_kev_per_adu=sub_gain,
            offset_kev=sub_offset,
            seed=seed + 1000 * b,
            **gen,
        )
        cube = sum(other_counts[k][r0:r1, :, None] * shapes[k][None, None, :] for k in shapes)
        ev2 = generate_events(
            other_e,
            cube,
            rows=r1 - r0,
            cols=n_cathode.shape[1],
            gain_kev_per_adu=sub_gain,
            offset_kev=sub_offset,
            seed=seed + 1000 * b + 500,
            **gen,
        )
        for e in (ev, ev2):
            parts["frame"].append(e.frame)
            parts["row"].append(e.row.astype(np.uint8) + np.uint8(r0))
            parts["col"].append(e.col)
            parts["adu"].append(e.adu)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.argsort(out["frame"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def _cycling_table(spec: CellSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 200
    cycle = np.arange(1, n + 1)
    fade = 1.0 - (1.0 - spec.retention_200_pct / 100.0) * (cycle - 1) / (n - 1)
    discharge = spec.discharge_mah_g * fade * (1.0 + 0.002 * rng.standard_normal(n))
    discharge[[0, -1]] = spec.discharge_mah_g * fade[[0, -1]]  # planted ends stay exact
    charge = discharge / 0.996
    charge[0] = spec.charge_mah_g
    return {
        "cycle": cycle,
        "c_rate": np.full(n, 0.5),
        "charge_capacity_mah_g": charge,
        "discharge_capacity_mah_g": discharge,
        "coulombic_efficiency_pct": 100.0 * discharge / charge,
        "overpotential_v": spec.overpotential_v + 0.0002 * (cycle - 1),
    }


def _eis_table(spec: CellSpec, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], float]:
    sigma = warburg_from_diffusivity(spec.d_overall_cm2_s)
    f = np.logspace(5, -2, 71)
    z = randles_warburg_impedance(
        f, r_e_ohm=spec.r_e_ohm, r_ct_ohm=spec.r_ct_ohm, c_dl_f=spec.c_dl_f, sigma_ohm_s05=sigma
    )
    z = z * (1.0 + 0.005 * rng.standard_normal(f.size))
    return {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag}, sigma


def _manifest(files: list[dict[str, Any]], size: TwinSize) -> dict[str, Any]:
    samples, cells, states = [], [], []
    for spec in CELLS.values():
        t_um = size.thickness_voxels[spec.key] * size.voxel_um
        samples.append(
            {
                "name": spec.sample,
                "material": "NMC811",
                "fabrication_method": spec.fabrication_method,
                "thickness_um": round(t_um, 2),
                "composition": "NMC811:C65:PVDF 90:5:5",
                "nominal_porosity": round(float(np.mean(spec.porosity_by_region)), 4),
                "notes": "digital twin (synthetic)",
            }
        )
        cells.append(
            {
                "name": spec.name,
                "cathode": spec.sample,
                "format": "CR2032",
                "counter_electrode": "Li metal",
                "electrolyte": "1 M LiPF6 in EC:EMC 3:7",
            }
        )
        for state, (cap, vmin, vmax) in {
            "charged": (spec.charge_mah_g, 2.8, 4.3),
            "discharged": (spec.discharge_mah_g, 2.8, 4.3),
        }.items():
            states.append(
                {
                    "cell": spec.name,
                    "state": state,
                    "cycle_number": 1,
                    "c_rate": 0.5,
                    "voltage_min_v": vmin,
                    "voltage_max_v": vmax,
                    "capacity_mah_g": cap,
                }
            )
    return {
        "beamtime": {
            "facility": "Diamond Light Source (digital twin)",
            "beamline": "I12",
            "proposal": f"TWIN-{size.name}",
            "beam_energy_kev": 115.0,
            "detector": "HEXITEC 80x80 CdZnTe, 250 um pitch",
            "start_date": "2021-06-01",
            "end_date": "2021-06-03",
        },
        "samples": samples,
        "cells": cells,
        "charge_states": states,
        "files": files,
    }


def _truth_header(tw: TwinSize, size: str, seed: int) -> dict[str, Any]:
    """Conventions, planted transform and pipeline settings of the twin."""
    return {
        "twin_version": TWIN_VERSION,
        "size": size,
        "seed": seed,
        "conventions": {
            "volume_axes": "(z, y, x); z = rotation axis = electrode thickness",
            "region_1": "index 0 of z (separator side); 3 equal slabs",
            "compton_grid": [COMPTON_ROWS, COMPTON_COLS],
            "compton_pixel_um": COMPTON_PIXEL_UM,
            "xct_voxel_um": tw.voxel_um,
            "xct_voxels_per_compton_pixel": tw.block,
            "li_stoichiometry": "1 - x in Li(1-x)Ni0.8Mn0.1Co0.1O2",
        },
        "calibration": {
            "intercept": DEFAULT_CALIBRATION.intercept,
            "slope": DEFAULT_CALIBRATION.slope,
            "meaning": "cathode S at the reference resolution, background-free",
        },
        "xcsi_model": {
            "geometry": TWIN_GEOMETRY.as_dict(),
            "profile_widths_au": list(WIDTHS_AU),
            "deep_core_fraction": DEEP_FRACTION,
            "reference_fwhm_kev": REFERENCE_FWHM_KEV,
            "detector_base_fwhm_kev": DETECTOR_BASE_FWHM_KEV,
            "outside_electrolyte_ring_px": OUTSIDE_RING_PX,
            "null_cell": "sc (Li independent of porosity)",
        },
        "transform_xct_to_compton": {
            **PLANTED_TRANSFORM,
            "convention": "analysis_engine.registration.align: moving = XCT lateral map at "
            "0.27 mm pixels, fixed = Compton grid",
        },
        "li_porosity_sensitivity": LI_POROSITY_SENSITIVITY,
        "expected": {
            "tortuosity_ordering": {
                "dit": "through-plane < in-plane in every region (vertical channels)",
                "sc": "through-plane ~ in-plane (isotropic)",
            },
            "porosity_ordering_dit": "region 1 > region 2 > region 3",
            "li_porosity_correlation": {"dit": "positive", "sc": "none (null cell)"},
        },
        "pipeline_parameters": {
            # the Compton pixel at the sample is known (0.27 mm, the planted scale is 1): with
            # a free scale the registration enlarges the DIT footprint by 4-12 % towards the
            # electrolyte ring, which the counts image also shows, and the cathode mask with it
            "correlate": {"allow_scale": False},
            "segment": {
                "opening_radius": 2.0,
                "fill_radius": tw.mask_fill_radius,
                # half-way between the electrolyte and the NMC grey levels (attenuation per
                # voxel): no partial-volume bias on 2-voxel bridges, unlike Otsu on a histogram
                # dominated by material
                "pore_threshold": round(
                    0.5
                    * (DEFAULT_ATTENUATION["pore"] + DEFAULT_ATTENUATION["material"])
                    * tw.voxel_um
                    * 1e-4,
                    8,
                ),
            },
        },
        "cells": {},
    }


def _write_xct(
    out: Path, spec: CellSpec, phantom: Any, zs: slice, tw: TwinSize, seed: int, c_index: int
) -> dict[str, Any]:
    """NXtomo scans of both states (same microstructure, independent noise)."""
    voxel_cm = tw.voxel_um * 1e-4
    states: dict[str, Any] = {}
    for s_index, state in enumerate(STATES):
        s_seed = seed + 100 * (c_index + 1) + s_index
        grey = coin_cell_volume(phantom, casing_thickness=2, noise=0.1, seed=s_seed)[zs]
        volume = grey * np.float32(voxel_cm)
        cols = tw.lateral_voxels + 8
        options: dict[str, Any] = {
            "n_angles": tw.n_angles,
            "scan_range_deg": tw.scan_range_deg,
            "incident_counts": tw.incident_counts,
            "seed": s_seed,
        }
        if tw.half_acquisition:
            cols = tw.lateral_voxels // 2 + 24
            options.update(detector_cols=cols, center_of_rotation=cols - 20.3)
        else:
            options.update(detector_cols=cols, center_of_rotation=(cols - 1) / 2.0 + 1.25)
        rel = f"xct/{spec.key}_{state}.nxs"
        (out / "xct").mkdir(exist_ok=True)
        scan = write_synthetic_nxtomo(out / rel, volume, pixel_size_m=tw.voxel_um * 1e-6, **options)
        states[state] = {
            "file": rel,
            "center_of_rotation": float(scan.center_of_rotation),
            "detector_cols": int(cols),
            "n_angles": tw.n_angles,
            "scan_range_deg": tw.scan_range_deg,
            "half_acquisition": tw.half_acquisition,
        }
    return states


def _compton_grid_maps(
    pore: np.ndarray, electrode: np.ndarray, tw: TwinSize
) -> tuple[np.ndarray, np.ndarray]:
    """Electrode coverage and (mesoscale-smoothed) porosity per region on the Compton grid."""
    cov_f, por_f, _ = region_maps(pore, electrode)
    grid = _to_compton_grid(np.concatenate([cov_f, por_f]), tw.block, PLANTED_TRANSFORM)
    coverage, pore_frac = grid[:3], grid[3:]
    # Li follows the porosity at the mesoscale: a Compton pixel (4 voxels) is smaller than
    # the channel spacing, so the raw per-pixel porosity mostly says "channel or wall".
    smooth_cov = ndi.gaussian_filter(coverage, (0, LI_SMOOTHING_PX, LI_SMOOTHING_PX))
    smooth_pore = ndi.gaussian_filter(pore_frac, (0, LI_SMOOTHING_PX, LI_SMOOTHING_PX))
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(
            (coverage > 1e-6) & (smooth_cov > 1e-6),
            smooth_pore / np.maximum(smooth_cov, 1e-12),
            np.nan,
        )
    return coverage, phi


def _planted_region(
    spec: CellSpec,
    state: str,
    r: int,
    coverage: np.ndarray,
    phi: np.ndarray,
    tw: TwinSize,
    seed: int,
) -> dict[str, Any]:
    """Li, S, cathode and other-phase photon counts of one region (Compton grid maps)."""
    inside = coverage >= 0.5
    li_mean = spec.li[state][r]
    if spec.key == "sc":  # the null cell: Li independent of porosity
        li = planted_li_independent(li_mean, phi, inside, seed=seed)
    else:
        li = planted_li_map(li_mean, phi, inside)
    # very porous pixels would exceed the profile model's range: Li <= 0.9, then the electrode
    # pixels are shifted back to the planted mean
    li = np.clip(li, 0.0, 0.9)
    li = np.where(inside, li + (li_mean - np.nanmean(li[inside])), li)
    phi_mean = float(np.nanmean(phi[inside]))
    # electrolyte fills the pores and a ring of OUTSIDE_RING_PX pixels around the footprint
    footprint = coverage > 0.01
    ring = ndi.binary_dilation(footprint, iterations=OUTSIDE_RING_PX) & ~footprint
    cov = np.where(footprint, np.clip(coverage, 0.0, 1.0), 0.0)
    solid = cov * (1.0 - np.where(np.isfinite(phi), phi, 0.0))
    void = np.where(footprint | ring, 1.0 - solid, 0.0)  # non-solid volume share of the pixel
    nmc_e, other_solid_e = DEFAULT_COMPOSITION.electrons_per_cm3()
    el = DEFAULT_COMPOSITION.electrolyte
    electrolyte_e = el.density_g_cm3 * el.electrons_per_gram
    scale = tw.compton_counts / ((1.0 - phi_mean) * nmc_e)  # a mean cathode pixel: compton_counts
    n_cathode = scale * solid * nmc_e
    n_other = scale * (solid * other_solid_e + void * electrolyte_e)
    s_map = np.where(n_cathode > 0, planted_s(li), np.nan)
    return {
        "inside": inside,
        "li": li,
        "s": s_map,
        "weight_valence": valence_weight(s_map),
        "n_cathode": n_cathode,
        "n_other": n_other,
        "li_mean": li_mean,
        "phi_mean": phi_mean,
        "void": void,
    }


def _write_xcsi_region(
    out: Path,
    spec: CellSpec,
    state: str,
    r: int,
    planted: dict[str, Any],
    *,
    bank: ComponentBank,
    fwhm: np.ndarray,
    tw: TwinSize,
    calibration: Calibration,
    seed: int,
) -> dict[str, Any]:
    """Events of one region written with the instrument geometry and the FWHM map."""
    ev = _events_for_region(
        planted["weight_valence"],
        planted["n_cathode"],
        planted["n_other"],
        bank=bank,
        fwhm=fwhm,
        size=tw,
        gain=calibration.gain_kev_per_adu,
        offset=calibration.offset_kev,
        seed=seed,
        frames=tw.frames,
    )
    rel = f"xcsi/{spec.key}_{state}_region{r + 1}.h5"
    (out / "xcsi").mkdir(exist_ok=True)
    write_hexitec_events(
        out / rel,
        frame=ev["frame"],
        row=ev["row"],
        col=ev["col"],
        adu=ev["adu"],
        calibration=calibration,
        n_frames=tw.frames,
        chunk_events=1 << 18,
        attrs={
            "source": "CorreLi digital twin",
            "cell": spec.name,
            "state": state,
            "region": r + 1,
        },
    )
    add_instrument(out / rel, instrument=TWIN_GEOMETRY.as_dict(), resolution_fwhm_kev=fwhm)
    inside, li, n_cath = planted["inside"], planted["li"], planted["n_cathode"]
    weights = np.where(inside & np.isfinite(li), n_cath, 0.0)
    return {
        "file": rel,
        "li_mean": planted["li_mean"],
        "s_mean": float(planted_s(planted["li_mean"])),
        "li_count_weighted": float(np.sum(np.nan_to_num(li) * weights) / weights.sum()),
        "electrode_pixels": int(inside.sum()),
        "porosity_mean_compton": planted["phi_mean"],
        "compton_counts_expected": float(n_cath.sum()),
        "other_counts_expected": float(planted["n_other"].sum()),
        "events": int(ev["frame"].size),
    }


def _uncorrected_expected(
    planted: dict[str, Any], *, min_counts: float = 100.0, mask: np.ndarray | None = None
) -> float:
    """S the chain reports without porosity correction: all pixels, or those in ``mask``.

    Window integrals at the reference resolution: closed forms for the cathode's Gaussians
    (:func:`.xcsi.window_integrals`), the other phases' free-atom profile blurred numerically.
    """
    (a_v, b_v), (a_c, b_c), (a_d, b_d), (a_o, b_o) = window_integrals()
    w = np.nan_to_num(planted["weight_valence"])
    d = DEEP_FRACTION
    n_c, n_o = planted["n_cathode"], planted["n_other"]
    low = n_c * (w * a_v + (1 - d - w) * a_c + d * a_d) + n_o * a_o
    high = n_c * (w * b_v + (1 - d - w) * b_c + d * b_d) + n_o * b_o
    keep = low + high >= min_counts
    if mask is not None:
        keep &= mask
    return float(low[keep].sum() / high[keep].sum())


def _write_echem(out: Path, spec: CellSpec, rng: np.random.Generator) -> tuple[list, dict]:
    """Cycling and EIS tables of one cell."""
    (out / "echem").mkdir(exist_ok=True)
    cyc = _cycling_table(spec, rng)
    rel_c = f"echem/{spec.key}_cycling.csv"
    write_table(
        out / rel_c,
        cyc,
        metadata={"cell": spec.name, "voltage_window_v": "2.8-4.3", "source": "digital twin"},
    )
    eis, sigma = _eis_table(spec, rng)
    rel_e = f"echem/{spec.key}_eis.csv"
    write_table(out / rel_e, eis, metadata={"cell": spec.name, "source": "digital twin"})
    files = [
        {"path": rel_c, "kind": "cycling", "cell": spec.name},
        {"path": rel_e, "kind": "eis", "cell": spec.name},
    ]
    truth = {
        "first_charge_mah_g": spec.charge_mah_g,
        "first_discharge_mah_g": spec.discharge_mah_g,
        "coulombic_efficiency_pct": 99.6,
        "retention_200_pct": spec.retention_200_pct,
        "overpotential_v": spec.overpotential_v,
        "d_overall_cm2_s": spec.d_overall_cm2_s,
        "r_e_ohm": spec.r_e_ohm,
        "r_ct_ohm": spec.r_ct_ohm,
        "c_dl_f": spec.c_dl_f,
        "warburg_sigma_ohm_s05": sigma,
    }
    return files, truth


def _write_index(
    out: Path,
    truth: dict[str, Any],
    truth_maps: dict[str, np.ndarray],
    files: list[dict[str, Any]],
    written: list[str],
    tw: TwinSize,
    started: float,
) -> None:
    """truth_maps.h5, manifest.yaml and ground_truth.json."""
    write_hdf5(
        out / "truth_maps.h5",
        truth_maps,
        attrs={
            "/": {
                "description": "planted maps on the 80 x 80 Compton grid: electrode "
                "coverage and (smoothed) porosity per region, Li (1 - x), cathode S, cathode "
                "and other-phase Compton photons per region and state, the FWHM map; NaN "
                "outside the electrode"
            }
        },
    )
    written.append("truth_maps.h5")
    with atomic_output(out / "manifest.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(_manifest(files, tw), sort_keys=False), encoding="utf-8")
    written.append("manifest.yaml")
    truth["files"] = [*written, "ground_truth.json"]
    truth["generation_seconds"] = round(time.perf_counter() - started, 2)
    with atomic_output(out / "ground_truth.json") as tmp:
        tmp.write_text(json.dumps(truth, indent=2), encoding="utf-8")


def make_beamtime(
    outdir: str | os.PathLike,
    *,
    size: str = "small",
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write the whole synthetic beamtime into ``outdir``; return the ground truth dict.

    Steps per cell: phantom -> XCT scans (:func:`_write_xct`) -> Compton-grid maps
    (:func:`_compton_grid_maps`) -> per state and region the planted Li and photons
    (:func:`_planted_region`) and their events (:func:`_write_xcsi_region`) -> electrochemistry
    tables (:func:`_write_echem`); then the index files (:func:`_write_index`).

    Parameters
    ----------
    outdir : path
        Directory to fill (created if absent); existing twin files are overwritten.
    size : {"small", "paper", "tiny"}
        ``small``: seconds to generate, a few minutes to analyse; ``paper``: the paper's
        acquisition (benchmarks only); ``tiny``: for tests.
    seed : int
        Random seed; the same seed gives the same files.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        The content of ``ground_truth.json`` (also written), with ``files`` listing every
        written file relative to ``outdir``.
    """
    if size not in SIZES:
        raise EngineInputError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    tw = SIZES[size]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    gain, offset = random_calibration(COMPTON_ROWS, COMPTON_COLS, seed=seed + 7)
    calibration = Calibration(gain_kev_per_adu=gain, offset_kev=offset)
    fwhm = resolution_map((COMPTON_ROWS, COMPTON_COLS), seed + 13)
    bank = ComponentBank(COMPTON_COLS, COMPTON_ROWS)
    truth = _truth_header(tw, size, seed)
    files: list[dict[str, Any]] = []
    written: list[str] = []
    truth_maps: dict[str, np.ndarray] = {"/resolution_fwhm_kev": fwhm.astype(np.float32)}
    n_steps = len(CELLS) * (1 + 2 * 3) + 2
    step = 0

    def tick(message: str) -> None:
        nonlocal step
        step += 1
        report(min(step / n_steps, 0.99), message)

    for c_index, spec in enumerate(CELLS.values()):
        phantom, zs = _phantom(spec, tw, seed + 11 * (c_index + 1))
        pore = phantom.pore_mask[zs]
        electrode = phantom.electrode_mask[zs]
        stats = porosity_by_region(pore, electrode, regions=3, thickness_axis=0)
        cell_truth: dict[str, Any] = {
            "name": spec.name,
            "sample": spec.sample,
            "fabrication_method": spec.fabrication_method,
            "thickness_voxels": int(pore.shape[0]),
            "thickness_um": pore.shape[0] * tw.voxel_um,
            "porosity_target_by_region": list(spec.porosity_by_region),
            "porosity_by_region": [float(p) for p in stats.porosity_by_region],
            "porosity": float(stats.porosity),
            "region_bounds": [int(b) for b in stats.region_bounds],
            "xct": _write_xct(out, spec, phantom, zs, tw, seed, c_index),
            "xcsi": {},
        }
        for state in STATES:
            rel = f"xct/{spec.key}_{state}.nxs"
            files.append(
                {"path": rel, "kind": "xct_projections", "cell": spec.name, "state": state}
            )
            written.append(rel)
        tick(f"XCT {spec.name}")

        coverage, phi = _compton_grid_maps(pore, electrode, tw)
        truth_maps[f"/{spec.key}/pore_mask"] = pore.astype(np.uint8)
        truth_maps[f"/{spec.key}/electrode_mask"] = electrode.astype(np.uint8)
        truth_maps[f"/{spec.key}/coverage"] = coverage.astype(np.float32)
        truth_maps[f"/{spec.key}/porosity"] = phi.astype(np.float32)
        for s_index, state in enumerate(STATES):
            for r in range(3):
                region_seed = seed + 10_000 * (c_index + 1) + 100 * s_index + r
                planted = _planted_region(
                    spec, state, r, coverage[r], phi[r], tw, seed=region_seed + 77
                )
                key = f"/{spec.key}/{state}"
                truth_maps[f"{key}/li_region{r + 1}"] = planted["li"].astype(np.float32)
                truth_maps[f"{key}/s_region{r + 1}"] = planted["s"].astype(np.float32)
                truth_maps[f"{key}/n_cathode_region{r + 1}"] = planted["n_cathode"].astype(
                    np.float32
                )
                truth_maps[f"{key}/n_other_region{r + 1}"] = planted["n_other"].astype(np.float32)
                truth_maps[f"{key}/void_region{r + 1}"] = planted["void"].astype(np.float32)
                truth_maps[f"{key}/valence_weight_region{r + 1}"] = planted["weight_valence"]
                region = _write_xcsi_region(
                    out,
                    spec,
                    state,
                    r,
                    planted,
                    bank=bank,
                    fwhm=fwhm,
                    tw=tw,
                    calibration=calibration,
                    seed=region_seed,
                )
                s_unc = _uncorrected_expected(planted)
                region["s_summed_expected"] = s_unc
                region["li_summed_expected"] = float(DEFAULT_CALIBRATION.stoichiometry(s_unc))
                region["summed_expected_meaning"] = (
                    "compton with default options on the whole detector: geometry, background "
                    "and resolution corrected, no cathode mask, no porosity correction"
                )
                s_fp = _uncorrected_expected(planted, mask=planted["inside"])
                region["s_footprint_expected"] = s_fp
                region["li_footprint_expected"] = float(DEFAULT_CALIBRATION.stoichiometry(s_fp))
                region["footprint_expected_meaning"] = (
                    "the same inside the planted cathode footprint (electrode coverage >= 0.5, "
                    "what correlate's cathode_mask registers): the electrolyte ring outside is "
                    "left out, electrolyte in the pores and carbon/binder are not corrected"
                )
                cell_truth["xcsi"].setdefault(state, {})[str(r + 1)] = region
                files.append(
                    {
                        "path": region["file"],
                        "kind": "xcs_events",
                        "cell": spec.name,
                        "state": state,
                        "region": r + 1,
                    }
                )
                written.append(region["file"])
                tick(f"XCS-I {spec.name} {state} region {r + 1}")

        echem_files, cell_truth["electrochemistry"] = _write_echem(out, spec, rng)
        files += echem_files
        written += [f["path"] for f in echem_files]
        truth["cells"][spec.key] = cell_truth

    _write_index(out, truth, truth_maps, files, written, tw, started)
    report(1.0, f"digital twin written to {out}")
    return truth
