"""NXtomo reading/validation and reconstruction files (analysis_engine.io.nxtomo)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from analysis_engine.cli import main as cli_main
from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo import (
    ReconstructionWriter,
    inspect_nxtomo,
    inspect_reconstruction,
    read_flats_darks,
    read_nxtomo_info,
    read_reconstruction,
    read_sinograms,
    write_nxtomo,
)
from analysis_engine.io.sniff import sniff

ROWS, COLS = 5, 12


def _scan(n_proj=20, span=180.0, flats=3, darks=2, seed=0):
    rng = np.random.default_rng(seed)
    n = darks + flats + n_proj
    data = rng.integers(200, 1000, size=(n, ROWS, COLS)).astype(np.uint16)
    data[:darks] = 10
    data[darks : darks + flats] = 2000
    keys = np.r_[np.full(darks, 2), np.full(flats, 1), np.zeros(n_proj)].astype(int)
    angles = np.r_[np.zeros(darks + flats), np.arange(n_proj) * span / n_proj]
    return data, keys, angles


@pytest.fixture()
def nxs(tmp_path):
    data, keys, angles = _scan()
    path = tmp_path / "scan.nxs"
    write_nxtomo(path, data, keys, angles, pixel_size_m=3.24e-6)
    return path, data, keys, angles


def test_roundtrip_metadata_and_chunked_sinograms(nxs):
    path, data, keys, angles = nxs
    info = read_nxtomo_info(path)
    assert (info.n_rows, info.n_cols, info.n_projections) == (ROWS, COLS, 20)
    assert info.scan_range_deg == 180
    assert info.pixel_size_m == pytest.approx(3.24e-6)
    np.testing.assert_allclose(info.angles_deg, angles[keys == 0])
    sino = read_sinograms(path, rows=(1, 4), info=info, block_images=7)  # blocks cross runs
    np.testing.assert_array_equal(sino, np.moveaxis(data[keys == 0][:, 1:4, :], 1, 0))
    flat, dark = read_flats_darks(path, rows=(1, 4), info=info)
    np.testing.assert_allclose(flat, 2000.0)
    np.testing.assert_allclose(dark, 10.0)
    facts = inspect_nxtomo(path)
    assert facts["projections"] == 20 and facts["flats"] == 3 and facts["darks"] == 2
    assert sniff(path).kind == "xct_projections"


def test_interleaved_flats_and_unsorted_runs(tmp_path):
    data, keys, angles = _scan()
    # move the flats to the end, as many beamlines record them
    order = np.r_[np.arange(2), np.arange(5, 25), np.arange(2, 5)]
    path = tmp_path / "end_flats.nxs"
    write_nxtomo(path, data[order], keys[order], angles[order])
    sino = read_sinograms(path, rows=(0, ROWS))
    np.testing.assert_array_equal(sino, np.moveaxis(data[5:], 1, 0))


def _broken(tmp_path, mutate):
    data, keys, angles = _scan()
    path = tmp_path / "bad.nxs"
    write_nxtomo(path, data, keys, angles)
    with h5py.File(path, "a") as f:
        mutate(f, data, keys, angles)
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f, d, k, a: f.__delitem__("entry/data/image_key"), "no image_key"),
        (lambda f, d, k, a: f.__delitem__("entry/data/rotation_angle"), "no rotation angles"),
        (
            lambda f, d, k, a: f["entry/data/image_key"].__setitem__(slice(2, 5), 0),
            "no flat fields",
        ),
        (
            lambda f, d, k, a: (
                f.__delitem__("entry/data/rotation_angle"),
                f.create_dataset("entry/data/rotation_angle", data=a[:-3]),
            ),
            "must match",
        ),
        (
            lambda f, d, k, a: f["entry/data/rotation_angle"].__setitem__(
                slice(5, None), np.arange(20) * 4.0
            ),
            "needs 180 deg",
        ),
        (
            lambda f, d, k, a: f["entry/data/data"].__setitem__(slice(2, 5), 0),
            "not brighter than the dark",
        ),
    ],
    ids=["no-image-key", "no-angles", "no-flats", "short-angles", "90-deg", "zero-flats"],
)
def test_bad_nxtomo_is_rejected_clearly(tmp_path, mutate, message, capsys):
    path = _broken(tmp_path, mutate)
    with pytest.raises(EngineInputError, match=message):
        inspect_nxtomo(path)
    code = cli_main(["reconstruct", str(path), "-o", str(tmp_path / "out.h5")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.h5").exists()


def test_nan_flats_rejected(tmp_path):
    data, keys, angles = _scan()
    data = data.astype(np.float32)
    data[3, 2, 4] = np.nan
    path = tmp_path / "nan.nxs"
    write_nxtomo(path, data, keys, angles)
    with pytest.raises(EngineInputError, match="NaN"):
        inspect_nxtomo(path)


def test_slice_range_outside_data(nxs, tmp_path, capsys):
    path = nxs[0]
    with pytest.raises(EngineInputError, match="outside"):
        read_sinograms(path, rows=(3, ROWS + 1))
    code = cli_main(["reconstruct", str(path), "-o", str(tmp_path / "o.h5"), "--slices", "4:9"])
    assert code == 2 and "outside the data" in capsys.readouterr().err
    assert cli_main(["reconstruct", str(path), "-o", str(tmp_path / "o.h5"), "--slices", "x"]) == 2


def test_reconstruction_writer_chunks_and_attrs(tmp_path):
    path = tmp_path / "rec.h5"
    volume = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4)
    with ReconstructionWriter(
        path, volume.shape, center_of_rotation=1.75, voxel_size_um=7.91
    ) as out:
        out.write(3, volume[3:])
        out.write(0, volume[:3])
    np.testing.assert_array_equal(read_reconstruction(path), volume)
    np.testing.assert_array_equal(read_reconstruction(path, slices=(1, 3)), volume[1:3])
    facts = inspect_reconstruction(path)
    assert facts["shape"] == [5, 4, 4]
    assert facts["center_of_rotation"] == pytest.approx(1.75)
    assert facts["voxel_size_um"] == pytest.approx(7.91)
    assert sniff(path).kind == "xct_reconstruction"


def test_incomplete_reconstruction_leaves_no_file(tmp_path):
    path = tmp_path / "rec.h5"
    with pytest.raises(RuntimeError, match="never written"):
        with ReconstructionWriter(
            path, (3, 2, 2), center_of_rotation=0.5, voxel_size_um=None
        ) as out:
            out.write(0, np.zeros((2, 2, 2)))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
