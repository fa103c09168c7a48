"""Cathode phantoms: realised porosity equals the planted targets, geometry conventions hold."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.phantom import (
    DEFAULT_ATTENUATION,
    coin_cell_volume,
    dit_cathode,
    slurry_cathode,
)
from analysis_engine.tomo.segmentation import porosity_by_region

PAPER_DIT = (0.333, 0.232, 0.096)


def test_dit_realises_paper_porosity_per_region():
    ph = dit_cathode((60, 64, 64), seed=3)
    # Each slice hits its profile value to one voxel in 64 x 64, so the slab means match
    # the targets to well under 0.1 vol%.
    np.testing.assert_allclose(ph.porosity_by_region, PAPER_DIT, atol=1e-3)
    assert ph.porosity == pytest.approx(np.mean(PAPER_DIT), abs=1e-3)
    assert ph.region_bounds == (0, 20, 40, 60)
    # The ground truth is exactly what the segmentation metric says about the masks.
    again = porosity_by_region(ph.pore_mask, ph.electrode_mask, regions=3)
    np.testing.assert_allclose(again.porosity_by_region, ph.porosity_by_region, atol=1e-12)


def test_dit_channels_are_vertical_and_widen_towards_region_1():
    ph = dit_cathode((60, 64, 64), seed=3, secondary_porosity=0.0, bridge_fraction=0.0)
    pores = ph.pore_mask
    # A pore voxel's neighbour along the thickness axis is almost always pore (channels),
    # its lateral neighbour much less often.
    along = (pores[1:] & pores[:-1]).sum() / pores[:-1].sum()
    across = (pores[:, :, 1:] & pores[:, :, :-1]).sum() / pores[:, :, :-1].sum()
    assert along > 0.9
    assert across < along - 0.1
    per_slice = pores.mean(axis=(1, 2))
    assert per_slice[2] > per_slice[30] > per_slice[57]
    assert np.all(np.diff(per_slice) <= 1e-3)  # monotone gradient (no steps back up)


def test_dit_thickness_axis_is_a_true_parameter():
    a = dit_cathode((40, 32, 36), seed=5, thickness_axis=0)
    b = dit_cathode((32, 36, 40), seed=5, thickness_axis=2)
    np.testing.assert_array_equal(np.moveaxis(a.pore_mask, 0, 2), b.pore_mask)
    assert a.porosity_by_region == b.porosity_by_region
    assert b.thickness_axis == 2


def test_dit_same_seed_same_phantom_other_seed_differs():
    a = dit_cathode((24, 32, 32), seed=1)
    b = dit_cathode((24, 32, 32), seed=1)
    c = dit_cathode((24, 32, 32), seed=2)
    np.testing.assert_array_equal(a.pore_mask, b.pore_mask)
    assert (a.pore_mask != c.pore_mask).mean() > 0.05


def test_slurry_hits_porosity_and_is_isotropic():
    ph = slurry_cathode((48, 48, 48), porosity=0.25, seed=2)
    assert ph.porosity == pytest.approx(0.25, abs=1e-3)
    np.testing.assert_allclose(ph.porosity_by_region, 0.25, atol=1e-3)
    pores = ph.pore_mask
    same = [
        (np.take(pores, range(1, 48), axis=ax) & np.take(pores, range(47), axis=ax)).mean()
        for ax in range(3)
    ]
    assert max(same) - min(same) < 0.01  # same two-point correlation along all axes


def test_slurry_sheet_network_percolates_in_plane_in_thin_slabs():
    """Twin-like geometry: three 5-slice region slabs, 25 % pores (small twin SC parameters).

    The thresholded blob network is nearly 2D in so thin a slab and does not span it
    in-plane; the calendered sheet network does, with tau of similar magnitude both ways
    (measured on this box: blob in-plane inf x 3; sheet through 3.8 / 3.4 / 4.3, in-plane
    3.9 / 3.6 / 4.0; seeds 0-3 at 64 and 80 voxels wide: in-plane / through 0.6 .. 1.5).
    """
    from analysis_engine.transport.table import directional_table

    shape = (15, 64, 64)
    blob = slurry_cathode(shape, porosity=0.25, pore_size=1.5, seed=3)
    sheet = slurry_cathode(
        shape, porosity=0.25, pore_size=4.0, network="sheet", calendering=2.5, seed=3
    )
    np.testing.assert_allclose(sheet.porosity_by_region, 0.25, atol=1e-3)
    for ph, spans in ((blob, False), (sheet, True)):
        rows = directional_table(ph.pore_mask, n_regions=3)
        tau = {(r["region"], r["direction"]): r["tau"] for r in rows}
        for region in (1, 2, 3):
            through, inplane = tau[(region, "through-plane")], tau[(region, "in-plane")]
            # Wiener bound D_eff <= porosity * D, so a percolating network has tau >= 1
            assert np.isfinite(through) and through >= 1.0
            assert np.isfinite(inplane) == spans, (region, through, inplane)
            assert not spans or inplane >= 1.0
            if spans:
                assert 0.5 < inplane / through < 2.0, (region, through, inplane)
    with pytest.raises(EngineInputError, match="network"):
        slurry_cathode(shape, network="foam")
    with pytest.raises(EngineInputError, match="calendering"):
        slurry_cathode(shape, calendering=0.5)


def test_disc_footprint_and_padding():
    ph = dit_cathode((40, 48, 48), footprint="disc", padding=6, seed=0)
    elec = ph.electrode_mask
    assert not elec[:6].any() and not elec[-6:].any()
    assert not elec[:, :6].any() and not elec[:, :, -6:].any()
    radius = 48 / 2 - 6
    area = elec[20].sum()
    assert area == pytest.approx(np.pi * radius**2, rel=0.03)
    assert not (ph.pore_mask & ~elec).any()
    np.testing.assert_allclose(ph.porosity_by_region, PAPER_DIT, atol=2e-3)


def test_coin_cell_volume_grey_levels_without_blur_or_noise():
    ph = dit_cathode((40, 48, 48), footprint="disc", padding=8, seed=0)
    vol = coin_cell_volume(ph, casing=True, casing_thickness=2, blur_sigma=0, noise=0)
    assert vol.dtype == np.float32 and vol.shape == ph.shape
    a = DEFAULT_ATTENUATION
    assert np.all(vol[ph.solid_mask] == np.float32(a["material"]))
    assert np.all(vol[ph.pore_mask] == np.float32(a["pore"]))
    assert vol[0, 24, 24] == np.float32(a["casing"])  # end cap
    assert vol[20, 24, 1] == np.float32(a["casing"])  # cylinder wall
    assert vol[20, 0, 0] == np.float32(a["outside"])  # corner outside the round casing
    assert vol[5, 24, 24] == np.float32(a["pore"])  # electrolyte between cap and electrode


def test_coin_cell_noise_level_and_blur():
    ph = slurry_cathode((24, 32, 32), seed=0)
    vol = coin_cell_volume(ph, casing=False, blur_sigma=0, noise=0.1, seed=1)
    clean = coin_cell_volume(ph, casing=False, blur_sigma=0, noise=0)
    contrast = DEFAULT_ATTENUATION["material"] - DEFAULT_ATTENUATION["pore"]
    assert np.std(vol - clean) == pytest.approx(0.1 * contrast, rel=0.02)
    blurred = coin_cell_volume(ph, casing=False, blur_sigma=1.0, noise=0)
    assert blurred.std() < clean.std()
    assert blurred.mean() == pytest.approx(clean.mean(), rel=1e-3)


def test_bad_inputs_raise_engine_input_error():
    with pytest.raises(EngineInputError, match="porosity_by_region"):
        dit_cathode((30, 32, 32), porosity_by_region=(0.5, 1.2))
    with pytest.raises(EngineInputError, match="shape"):
        dit_cathode((30, 32))
    with pytest.raises(EngineInputError, match="too few"):
        dit_cathode((8, 32, 32), porosity_by_region=(0.3,) * 5)
    with pytest.raises(EngineInputError, match="porosity"):
        slurry_cathode((16, 16, 16), porosity=1.5)
    with pytest.raises(EngineInputError, match="padding"):
        coin_cell_volume(dit_cathode((24, 32, 32), seed=0), casing=True)
    with pytest.raises(EngineInputError, match="attenuation"):
        coin_cell_volume(dit_cathode((24, 32, 32), seed=0), casing=False, attenuation={"lead": 3})


def test_dit_bridges_join_every_channel_of_each_region_laterally():
    # A spanning tree over the channel lattice per region: each region's pores are one
    # connected network reaching all four lateral faces, without luck; per-region porosity
    # stays exact. Without bridges the channels are separate (one component each).
    ph = dit_cathode((30, 64, 64), seed=3, secondary_porosity=0.0)
    np.testing.assert_allclose(ph.porosity_by_region, PAPER_DIT, atol=1e-3)
    bounds = ph.region_bounds
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        labels, n = ndi.label(ph.pore_mask[a:b])
        assert n == 1
        assert labels[:, :, 0].any() and labels[:, :, -1].any()
        assert labels[:, 0].any() and labels[:, -1].any()
    separate = dit_cathode((30, 64, 64), seed=3, secondary_porosity=0.0, bridge_fraction=0.0)
    assert ndi.label(separate.pore_mask[: bounds[1]])[1] > 20
