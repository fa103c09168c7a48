"""The segmentation chain in blocks gives the whole-volume chain's result, voxel for voxel."""

import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.phantom import coin_cell_volume, dit_cathode
from analysis_engine.tomo import segmentation as seg
from analysis_engine.tomo.segment_stream import segment_streamed
from analysis_engine.tomo.segmentation import segment_electrode


@pytest.fixture(scope="module")
def dit_volume():
    ph = dit_cathode((60, 80, 80), seed=11)
    return coin_cell_volume(ph, casing=False, blur_sigma=0.8, noise=0.12, seed=12)


@pytest.fixture(scope="module")
def coin_cell():
    ph = dit_cathode((72, 96, 96), footprint="disc", padding=16, seed=21)
    return coin_cell_volume(ph, casing=True, casing_thickness=2, seed=22)


def _streamed(volume, block_voxels, tmp_path, **options):
    electrode = np.zeros(volume.shape, dtype=np.uint8)
    pores = np.zeros(volume.shape, dtype=np.uint8)
    options.setdefault("scratch_dir", tmp_path)
    if "mask_threshold" in options:
        options["mask_threshold_method"] = options.pop("mask_threshold")
    result = segment_streamed(volume, electrode, pores, block_voxels=block_voxels, **options)
    return result, electrode.astype(bool), pores.astype(bool)


def _assert_same(whole, streamed):
    result, electrode, pores = streamed
    np.testing.assert_array_equal(electrode, whole.electrode_mask)
    np.testing.assert_array_equal(pores, whole.pore_mask)
    assert result.mask_threshold == whole.mask_threshold
    assert result.pore_threshold == whole.pore_threshold
    assert result.electrode_voxels == int(whole.electrode_mask.sum())
    np.testing.assert_array_equal(result.regions.region_bounds, whole.regions.region_bounds)
    np.testing.assert_array_equal(
        result.regions.electrode_voxels_by_region, whole.regions.electrode_voxels_by_region
    )
    np.testing.assert_array_equal(result.porosity_by_region, whole.porosity_by_region)
    assert result.porosity == whole.porosity
    np.testing.assert_array_equal(result.regions.lateral_porosity, whole.regions.lateral_porosity)
    for name in ("distance_voxels", "electrode_voxels", "material_voxels", "material_fraction"):
        np.testing.assert_array_equal(getattr(result.profile, name), getattr(whole.profile, name))


# Block budgets: one block for the whole volume, blocks cut along z only, along z and y.
@pytest.mark.parametrize("block_voxels", [10**7, 80 * 80 * 20, 80 * 30 * 14])
@pytest.mark.parametrize("downsample", [1, 2])
def test_blocks_give_the_whole_volume_result(dit_volume, tmp_path, block_voxels, downsample):
    whole = segment_electrode(dit_volume, mask_downsample=downsample)
    _assert_same(whole, _streamed(dit_volume, block_voxels, tmp_path, mask_downsample=downsample))


def test_blocks_with_casing_band_threshold_and_nan(coin_cell, tmp_path):
    vol = coin_cell.copy()
    vol[:, :3, :3] = np.nan
    options = dict(fill_radius=6, opening_radius=4, mask_threshold="band", mask_downsample=3)
    whole = segment_electrode(vol, **options)
    _assert_same(whole, _streamed(vol, 96 * 40 * 12, tmp_path, **options))


@pytest.mark.parametrize("axis", [1, 2])
def test_blocks_along_another_thickness_axis(dit_volume, tmp_path, axis):
    vol = np.ascontiguousarray(np.moveaxis(dit_volume, 0, axis))
    whole = segment_electrode(vol, thickness_axis=axis, current_collector="start")
    _assert_same(
        whole,
        _streamed(vol, 80 * 24 * 10, tmp_path, thickness_axis=axis, current_collector="start"),
    )


def test_subsampled_thresholds_pick_the_same_voxels(dit_volume, tmp_path, monkeypatch):
    # Volumes above the threshold sample size use every n-th voxel (of the volume, and of the
    # electrode in C order): the blocks must pick the very same voxels.
    monkeypatch.setattr(seg, "_THRESHOLD_SAMPLE", 10_007)
    for smoothing in (0.7, "median"):
        whole = segment_electrode(dit_volume, pore_smoothing=smoothing)
        _assert_same(whole, _streamed(dit_volume, 80 * 24 * 10, tmp_path, pore_smoothing=smoothing))


def test_bad_input_is_refused(tmp_path):
    sink = np.zeros((8, 8, 8), dtype=np.uint8)
    with pytest.raises(EngineInputError, match="3D"):
        segment_streamed(np.zeros((8, 8)), sink, sink, scratch_dir=tmp_path)
    with pytest.raises(EngineInputError, match="no finite"):
        segment_streamed(np.full((8, 8, 8), np.nan), sink, sink, scratch_dir=tmp_path)
    with pytest.raises(EngineInputError, match="uniform"):
        segment_streamed(np.ones((8, 8, 8)), sink, sink, scratch_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # scratch removed


def test_run_segment_reads_and_writes_by_blocks(dit_volume, tmp_path):
    import h5py

    from analysis_engine.tomo.segment_commands import run_segment

    src = tmp_path / "volume.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("/volume", data=dit_volume, chunks=(1, 80, 80))
    summary = run_segment(f"{src}:/volume", tmp_path / "seg.h5", block_voxels=80 * 80 * 12)
    whole = segment_electrode(dit_volume)
    with h5py.File(tmp_path / "seg.h5") as f:
        np.testing.assert_array_equal(f["/electrode_mask"][()].astype(bool), whole.electrode_mask)
        np.testing.assert_array_equal(f["/pore_mask"][()].astype(bool), whole.pore_mask)
        assert f["/electrode_mask"].chunks == (1, 80, 80)
        np.testing.assert_array_equal(f["/porosity_by_region"][()], whole.porosity_by_region)
    assert summary["porosity"] == whole.porosity
    assert summary["electrode_voxels"] == int(whole.electrode_mask.sum())
    with pytest.raises(EngineInputError, match="no dataset"):
        run_segment(f"{src}:/missing", tmp_path / "bad.h5")
    with pytest.raises(EngineInputError, match="block_voxels"):
        run_segment(f"{src}:/volume", tmp_path / "bad.h5", block_voxels=10)
    assert not (tmp_path / "bad.h5").exists()
