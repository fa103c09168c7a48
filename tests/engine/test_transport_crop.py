"""Transport sub-volumes inside the electrode: inscribed boxes and the cropped Table 1 rows."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import write_hdf5
from analysis_engine.synthetic.phantom import dit_cathode
from analysis_engine.transport import directional_table
from analysis_engine.transport.commands import run_tortuosity, run_transport_table
from analysis_engine.transport.table import (
    cap_box,
    electrode_region_boxes,
    inscribed_rectangle,
    segmentation_table,
    streamed_region_boxes,
)


def test_inscribed_rectangle_known_answers():
    m = np.zeros((6, 8), bool)
    m[1:5, 2:7] = True
    m[0, 0] = True  # a lone pixel does not win
    assert inscribed_rectangle(m) == ((1, 5), (2, 7))
    # a disc of radius R holds a square of side ~ R * sqrt(2)
    yy, xx = np.mgrid[0:101, 0:101]
    disc = (yy - 50) ** 2 + (xx - 50) ** 2 <= 40**2
    (r0, r1), (c0, c1) = inscribed_rectangle(disc)
    assert disc[r0:r1, c0:c1].all()
    assert (r1 - r0) * (c1 - c0) == pytest.approx(2 * 40**2, rel=0.05)
    with pytest.raises(EngineInputError, match="empty"):
        inscribed_rectangle(np.zeros((4, 4), bool))


@pytest.fixture(scope="module")
def disc_in_field():
    """A DIT electrode (planted in an inner box) inside a disc inside a larger field.

    The field outside the disc is all pore (electrolyte around the electrode) and the disc
    outside the planted box is solid, so only a crop to the box gives the planted answer.
    """
    inner = dit_cathode((18, 40, 40), channel_spacing=10.0, bridge_height=1, seed=4)
    shape = (24, 96, 96)
    z0, y0, x0 = 3, 28, 28
    pore = np.ones(shape, bool)
    electrode = np.zeros(shape, bool)
    yy, xx = np.mgrid[0:96, 0:96]
    disc = (yy - 47.5) ** 2 + (xx - 47.5) ** 2 <= 27.6**2  # inscribed square: the planted box
    electrode[z0 : z0 + 18] = disc
    pore[z0 : z0 + 18][:, disc] = False
    pore[z0 : z0 + 18, y0 : y0 + 40, x0 : x0 + 40] = inner.pore_mask
    return inner, pore, electrode, (z0, y0, x0)


def test_region_boxes_are_inside_the_electrode_and_cover_its_thickness(disc_in_field):
    _, _, electrode, (z0, _, _) = disc_in_field
    boxes = electrode_region_boxes(electrode, thickness_axis=0, n_regions=3)
    assert [b[0] for b in boxes] == [(z0, z0 + 6), (z0 + 6, z0 + 12), (z0 + 12, z0 + 18)]
    for box in boxes:
        assert electrode[tuple(slice(a, b) for a, b in box)].all()
        assert box[1:] == ((28, 68), (28, 68))  # the largest square in the disc


def test_cropped_table_equals_table_on_planted_box(disc_in_field, tmp_path):
    inner, pore, electrode, (z0, y0, x0) = disc_in_field
    expected = directional_table(inner.pore_mask)
    box = [[z0, z0 + 18], [y0, y0 + 40], [x0, x0 + 40]]
    explicit = directional_table(pore, box=box)
    for got, want in zip(explicit, expected, strict=True):
        assert got["box"][0] == [z0 + want["box"][0][0], z0 + want["box"][0][1]]
        assert got["porosity"] == want["porosity"]
        assert got["tau"] == pytest.approx(want["tau"], rel=1e-9)
    # the whole field of view: the electrolyte around the disc short-circuits in-plane
    # transport (tau well below the electrode's) - the bug this crop fixes
    whole = directional_table(pore)
    assert whole[1]["tau"] < 0.5 * expected[1]["tau"]
    # through the segmentation file, cropped to the electrode automatically
    seg = tmp_path / "seg.h5"
    write_hdf5(seg, {"/pore_mask": pore.astype(np.uint8), "/electrode_mask": electrode})
    summary = run_transport_table(seg, tmp_path / "table.h5")
    assert summary["crop"] == "electrode"
    for got, want in zip(summary["rows"], expected, strict=True):
        assert got["porosity"] == want["porosity"]
        assert got["tau"] == pytest.approx(want["tau"], rel=1e-9)
    explicit_run = run_transport_table(seg, tmp_path / "table2.h5", box=box)
    assert explicit_run["crop"] == "box"
    assert [r["tau"] for r in explicit_run["rows"]] == pytest.approx([r["tau"] for r in expected])
    one = run_tortuosity(seg, tmp_path / "tau.h5", axis=0, box=box)
    assert one["box"] == box
    assert one["tau"] == pytest.approx(
        directional_table(inner.pore_mask, n_regions=1)[0]["tau"], rel=1e-3
    )
    with pytest.raises(EngineInputError, match="crop"):
        run_transport_table(seg, tmp_path / "t3.h5", crop="casing")
    with pytest.raises(EngineInputError, match="box"):
        run_transport_table(seg, tmp_path / "t4.h5", box=[[0, 99], [0, 5], [0, 5]])


def test_dit_phantom_percolates_in_plane_and_is_anisotropic():
    # 20 slices per region (2-slice bridges need that many to percolate in region 3);
    # Table 1: tau x-y 8.7 / 10.5 / 11.2 vs y-z 1.1 / 2.3 / 2.8
    ph = dit_cathode((60, 72, 72), channel_spacing=12.0, seed=3)
    np.testing.assert_allclose(ph.porosity_by_region, (0.333, 0.232, 0.096), atol=1e-3)
    rows = directional_table(ph.pore_mask, electrode=ph.electrode_mask)
    for r in (1, 2, 3):
        through = next(x for x in rows if x["region"] == r and x["direction"] == "through-plane")
        inplane = next(x for x in rows if x["region"] == r and x["direction"] == "in-plane")
        assert math.isfinite(inplane["tau"]) and math.isfinite(through["tau"])
        assert inplane["tau"] > 1.8 * through["tau"]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_streamed_region_boxes_equal_whole_mask_boxes(disc_in_field, axis):
    _, _, electrode, _ = disc_in_field
    moved = np.ascontiguousarray(np.moveaxis(electrode, 0, axis))
    whole = electrode_region_boxes(moved, thickness_axis=axis, n_regions=3)
    # slabs of 5 slices (the mask is read 5 z-slices at a time)
    streamed = streamed_region_boxes(
        moved, thickness_axis=axis, n_regions=3, block_voxels=5 * moved.shape[1] * moved.shape[2]
    )
    assert streamed == whole


def test_segmentation_table_reads_boxes_and_equals_the_whole_table(disc_in_field, tmp_path):
    _, pore, electrode, _ = disc_in_field
    whole = directional_table(pore & electrode, electrode=electrode)
    seg = tmp_path / "seg.h5"
    write_hdf5(seg, {"/pore_mask": pore.astype(np.uint8), "/electrode_mask": electrode})
    with h5py.File(seg) as f:
        rows = segmentation_table(f["/pore_mask"], f["/electrode_mask"], block_voxels=4000)
    assert rows == whole
    assert run_transport_table(seg, tmp_path / "t.h5")["rows"] == whole


def test_cap_box_keeps_the_thickness_and_shrinks_laterally_about_the_centre():
    box = ((3, 21), (28, 68), (28, 68))
    assert cap_box(box, 0, None) == box
    assert cap_box(box, 0, 18 * 40 * 40) == box
    capped = cap_box(box, 0, 18 * 20 * 20)
    assert capped == ((3, 21), (38, 58), (38, 58))
    assert cap_box(box, 1, 10) == ((10, 13), (28, 68), (46, 49))  # never below 3 voxels


def test_transport_table_region_limit(disc_in_field, tmp_path):
    inner, pore, electrode, (z0, y0, x0) = disc_in_field
    seg = tmp_path / "seg.h5"
    write_hdf5(seg, {"/pore_mask": pore.astype(np.uint8), "/electrode_mask": electrode})
    limit = 6 * 20 * 20
    summary = run_transport_table(seg, tmp_path / "t.h5", max_region_voxels=limit)
    for row in summary["rows"]:
        (a, b), (c, d), (e, g) = row["box"]
        assert (b - a) * (d - c) * (g - e) <= limit
        assert (c, d) == (y0 + 10, y0 + 30) and (e, g) == (x0 + 10, x0 + 30)
        # the solved sub-volume is the planted one's centre
        sub = inner.pore_mask[a - z0 : b - z0, c - y0 : d - y0, e - x0 : g - x0]
        assert row["porosity"] == pytest.approx(sub.mean())
