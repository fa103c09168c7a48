"""Result exports (NeXus NXdata, .hxt, TIFF, CSV) checked with other readers: silx's NXdata
validator (what h5web/silx/DAWN rely on), tifffile, the csv module and ``struct``."""

from __future__ import annotations

import csv
import struct

import h5py
import numpy as np
import pytest
import tifffile

from analysis_engine.errors import EngineInputError
from analysis_engine.io.export import export_formats, export_result

nxdata = pytest.importorskip("silx.io.nxdata")


@pytest.fixture()
def compton_result(tmp_path):
    li = np.arange(20, dtype=np.float32).reshape(4, 5) / 10  # asymmetric: rows != cols
    li[0, 0] = np.nan
    path = tmp_path / "compton.h5"
    with h5py.File(path, "w") as f:  # the compton command's layout, written by hand
        f["li_stoichiometry"] = li
        f["s_parameter"] = li * 2
        f["peak_center_kev"] = li + 80
        f["energy_bins"] = np.linspace(60, 120, 8)
        f["summed_spectrum"] = np.arange(8.0)
        f.attrs["engine_version"] = "test"
    return path, li


def test_compton_result_as_nexus_opens_in_silx(compton_result, tmp_path):
    path, li = compton_result
    assert export_formats(path) == ["nxs", "tif", "csv"]
    out = tmp_path / "out.nxs"
    export_result(path, "nxs", out)
    with h5py.File(out) as f:
        default = nxdata.get_default(f)  # follows /@default -> entry@default like h5web
        assert default is not None and default.is_valid
        np.testing.assert_array_equal(default.signal[()], li)
        assert [a.shape for a in default.axes] == [(4,), (5,)]
        peak = nxdata.NXdata(f["entry/peak_center_kev"])
        assert peak.is_valid and peak.signal.attrs["units"] == "keV"
        spectrum = nxdata.NXdata(f["entry/summed_spectrum"])
        assert spectrum.axes[0].attrs["units"] == "keV"


def test_compton_result_as_tiff_and_csv(compton_result, tmp_path):
    path, li = compton_result
    export_result(path, "tif", tmp_path / "li.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "li.tif"), li)
    export_result(path, "csv", tmp_path / "maps.csv")
    with open(tmp_path / "maps.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    assert rows[0]["li_stoichiometry"] == ""  # NaN
    hit = next(r for r in rows if r["row"] == "3" and r["col"] == "1")
    assert float(hit["li_stoichiometry"]) == pytest.approx(li[3, 1])
    assert float(hit["s_parameter"]) == pytest.approx(2 * li[3, 1])


def test_spectra_as_hxt_bytes(tmp_path):
    cube = np.arange(2 * 3 * 4, dtype=np.uint32).reshape(2, 3, 4)
    energy = np.array([10.0, 10.5, 11.0, 11.5])
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["energy_bins"] = energy
        f["pixel_histograms"] = cube
    assert "hxt" in export_formats(tmp_path / "s.h5")
    export_result(tmp_path / "s.h5", "hxt", tmp_path / "s.hxt")
    raw = (tmp_path / "s.hxt").read_bytes()
    assert raw[:8] == b"HEXITECH" and struct.unpack_from("<Q", raw, 8)[0] == 3
    offset = 8 + 8 + 36 + 4 + 100 + 16
    assert struct.unpack_from("<3I", raw, offset) == (2, 3, 4)
    offset += 12
    np.testing.assert_array_equal(np.frombuffer(raw, "<f8", 4, offset), energy)
    counts = np.frombuffer(raw, "<f8", offset=offset + 32)
    assert counts.size == cube.size
    for r, c, b in [(0, 2, 1), (1, 0, 3), (1, 2, 0)]:
        assert counts[(r * 3 + c) * 4 + b] == cube[r, c, b]


def test_volume_axes_in_micrometres(tmp_path):
    vol = np.random.default_rng(0).random((3, 6, 7)).astype(np.float32)
    with h5py.File(tmp_path / "rec.h5", "w") as f:
        ds = f.create_dataset("entry/reconstruction/data", data=vol)
        ds.attrs["voxel_size_um"] = 2.5
    export_result(tmp_path / "rec.h5", "nxs", tmp_path / "rec.nxs")
    with h5py.File(tmp_path / "rec.nxs") as f:
        group = nxdata.get_default(f)
        assert group.is_valid
        np.testing.assert_allclose(group.axes[2][()], np.arange(7) * 2.5)
        assert group.axes[0].attrs["units"] == "um"
    export_result(tmp_path / "rec.h5", "tif", tmp_path / "rec.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "rec.tif"), vol)
    with pytest.raises(EngineInputError, match="cannot be exported as hxt"):
        export_result(tmp_path / "rec.h5", "hxt", tmp_path / "x.hxt")
    assert not (tmp_path / "x.hxt").exists()


def test_tiff_stack_folder_and_mixed_shapes(tmp_path):
    from analysis_engine.io.common import read_array

    folder = tmp_path / "slices"
    folder.mkdir()
    vol = np.arange(4 * 3 * 5, dtype=np.uint16).reshape(4, 3, 5)
    for i, img in enumerate(vol):  # names sort naturally: 2 before 10
        tifffile.imwrite(folder / f"slice_{[0, 2, 10, 11][i]}.tif", img)
    np.testing.assert_array_equal(read_array(folder), vol)
    tifffile.imwrite(folder / "slice_12.tif", np.zeros((3, 6), np.uint16))
    with pytest.raises(EngineInputError, match="slice_12.tif is .3, 6."):
        read_array(folder)
