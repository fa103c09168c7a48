"""The reduced volume behind the viewer's side planes: block reduction against explicit loops,
written slab by slab and read back with h5py."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.io.slices import VIEW_VOLUME_PATH, iter_volume_slabs, write_view_volume
from analysis_engine.preview import block_mean, block_reduce_3d


def _loops(vol, s, how):
    shape = tuple(-(-n // s) for n in vol.shape)
    out = np.zeros(shape)
    for idx in np.ndindex(shape):
        block = vol[tuple(slice(i * s, (i + 1) * s) for i in idx)]
        block = block[np.isfinite(block)] if how == "mean" else block
        out[idx] = (block.mean() if block.size else np.nan) if how == "mean" else block.max()
    return out


def test_block_reduce_matches_loops_with_ragged_edges_and_nan():
    vol = np.random.default_rng(4).normal(size=(7, 10, 9))
    vol[0, 0, 0] = np.nan
    np.testing.assert_allclose(block_reduce_3d(vol, step=3), _loops(vol, 3, "mean"), rtol=1e-5)
    whole = np.random.default_rng(5).normal(size=(6, 9, 12))  # divisible: the fast path
    np.testing.assert_allclose(block_reduce_3d(whole, step=3), _loops(whole, 3, "mean"), rtol=1e-5)
    mask = (vol > 1.5).astype(np.uint8)
    got = block_reduce_3d(mask, step=4, how="max")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, _loops(mask, 4, "max"))
    with pytest.raises(EngineInputError):
        block_reduce_3d(vol[0], step=2)
    with pytest.raises(EngineInputError, match="how"):
        block_reduce_3d(vol, step=2, how="median")


def test_slabs_written_and_read_back(tmp_path):
    vol = np.arange(7 * 6 * 5, dtype=np.float32).reshape(7, 6, 5)
    src = tmp_path / "v.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("/data", data=vol, chunks=(1, 6, 5))
    slabs = list(iter_volume_slabs(src, "/data", thickness=3))
    assert [s for s, _ in slabs] == [0, 3, 6] and slabs[-1][1].shape == (1, 6, 5)
    out = tmp_path / "view.h5"
    reduced = ((s // 3, block_reduce_3d(a, step=3)) for s, a in slabs)
    write_view_volume(out, (3, 2, 2), np.float32, reduced, attrs={"step": 3})
    with h5py.File(out, "r") as f:
        ds = f[VIEW_VOLUME_PATH]
        assert ds.attrs["step"] == 3 and ds.chunks == (3, 2, 2)
        np.testing.assert_allclose(ds[()], _loops(vol, 3, "mean"), rtol=1e-6)
    with pytest.raises(EngineInputError, match="does not fit"):
        write_view_volume(
            tmp_path / "bad.h5", (1, 2, 2), np.float32, iter([(0, np.zeros((2, 2, 2)))])
        )
    assert not (tmp_path / "bad.h5").exists()  # nothing partial left behind


def test_block_mean_fast_and_nan_paths_match_loops():
    img = np.random.default_rng(7).normal(size=(12, 8))
    # 2D blocks = 3D blocks of the image repeated over a whole block of slices
    expected = _loops(img[None].repeat(4, 0), 4, "mean")[0]
    np.testing.assert_allclose(block_mean(img, step=4), expected, rtol=1e-5)
    img[1, 1] = np.nan  # the fast path sees the NaN and falls back to the NaN-aware mean
    got = block_mean(img, step=4)
    assert np.isfinite(got).all()
    assert got[0, 0] == pytest.approx(np.nanmean(img[:4, :4]), rel=1e-6)
    assert expected.shape == got.shape
