"""Reading result files back (io.results), PNG bytes (io.png) and map colouring (preview).

Expected values: arrays written here with h5py directly; PNG decoded by Pillow (an
independent decoder); colours are matplotlib's viridis values at the stops."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from analysis_engine.errors import EngineInputError
from analysis_engine.io.png import encode_png
from analysis_engine.io.results import read_result, read_result_array, read_result_plane
from analysis_engine.preview import colorize


@pytest.fixture
def result_file(tmp_path):
    path = tmp_path / "r.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.attrs["voxel_size_um"] = 7.9
        f["li_stoichiometry"] = rng.random((5, 6))
        f["region_1/porosity"] = np.ones((3, 3))
        f["region_2/porosity"] = np.zeros((3, 3))
        f["region_2/pairs"] = np.arange(6.0).reshape(3, 2)
        f["eis/frequency_hz"] = np.arange(4.0)
        f["big"] = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return path


def test_read_result_names_globs_and_limits(result_file):
    with h5py.File(result_file, "r") as f:
        li = f["li_stoichiometry"][()]
    r = read_result(result_file, ["li_stoichiometry", "absent", "region_*"])
    np.testing.assert_array_equal(r.get("li_stoichiometry"), li)
    np.testing.assert_array_equal(r.get("/region_2/pairs"), np.arange(6.0).reshape(3, 2))
    assert r.get("absent") is None and r.get("eis/frequency_hz") is None  # not asked for
    assert r.groups("region_") == ["region_1", "region_2"]
    assert "eis" in r and "region_3" not in r
    assert r.attrs["voxel_size_um"] == pytest.approx(7.9)
    limited = read_result(result_file, ["big"], max_elements=100)
    assert limited.get("big") is None and limited.shapes["/big"] == (4, 5, 6)


def test_read_plane_and_array(result_file):
    expected = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    np.testing.assert_array_equal(read_result_plane(result_file, "big", axis=2), expected[:, :, 3])
    np.testing.assert_array_equal(
        read_result_plane(result_file, "big", axis=1, index=4), expected[:, 4, :]
    )
    assert read_result_plane(result_file, "li_stoichiometry", axis=0) is None  # not 3D
    with pytest.raises(EngineInputError, match="outside"):
        read_result_plane(result_file, "big", axis=0, index=4)
    assert read_result_array(result_file, "nothing") is None


def test_unreadable_files_raise_clear_errors(tmp_path):
    with pytest.raises(EngineInputError, match="not found"):
        read_result(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(EngineInputError, match="cannot be opened as HDF5"):
        read_result_array(bad, "x")


def test_png_decodes_to_the_same_pixels():
    rgba = np.random.default_rng(2).integers(0, 256, size=(7, 11, 4), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png(rgba)))
    assert img.mode == "RGBA" and img.size == (11, 7)
    np.testing.assert_array_equal(np.asarray(img), rgba)
    with pytest.raises(EngineInputError, match="uint8"):
        encode_png(np.zeros((3, 3, 3), dtype=np.uint8))


def test_colorize_window_ends_nan_and_size():
    z = np.array([[0.0, 1.0], [0.5, np.nan]])
    out = colorize(z, window=(0.0, 1.0))
    # matplotlib viridis: 0 -> #440154, 1 -> #fde725, 0.5 -> #21918c
    np.testing.assert_array_equal(out[0, 0], [68, 1, 84, 255])
    np.testing.assert_array_equal(out[0, 1], [253, 231, 37, 255])
    np.testing.assert_array_equal(out[1, 0], [33, 145, 140, 255])
    assert out[1, 1, 3] == 0  # NaN is transparent
    assert colorize(z, window=(0, 1), size_px=8).shape == (8, 8, 4)  # x4 nearest neighbour
    big = colorize(np.ones((400, 200)), size_px=100)
    assert big.shape == (100, 50, 4)
    with pytest.raises(EngineInputError):
        colorize(np.ones(5))
