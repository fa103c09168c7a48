"""HEXITEC native files (.bin, .hxt, calibration arrays) written byte by byte in the test.

The files here are built with ``struct`` and explicit loops from the published layouts, never
with CorreLi's writers, so a reader that got the layout wrong cannot agree with them.
"""

from __future__ import annotations

import json
import struct

import h5py
import numpy as np
import pytest

from analysis_engine.cli import main
from analysis_engine.errors import EngineInputError
from analysis_engine.io.hexitec_native import read_hxt, write_hxt
from analysis_engine.io.sniff import sniff
from analysis_engine.synthetic.compton import spectra_for_s_map


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None
    return code, summary, captured.err


# --------------------------------------------------------------------------- .bin


def _bin_bytes(frames):
    """Frames (n, 80, 80) [frame, row, col] -> .bin bytes, following read80x80Frame's loops:
    for each row, for j in 0..19, for block b in 0..3: column j + 20 * b."""
    out = bytearray()
    for frame in frames:
        for row in range(80):
            for j in range(20):
                for b in range(4):
                    out += struct.pack("<H", int(frame[row, j + 20 * b]))
    return bytes(out)


HITS = [  # (frame, row, col, adu); far apart so every hit is its own cluster
    (0, 3, 61, 1010),
    (0, 40, 7, 2020),
    (0, 77, 79, 1510),
    (1, 3, 61, 1010),
    (1, 20, 30, 900),  # below this pixel's threshold: not a hit
    (2, 50, 50, 3030),  # bad pixel (NaN gradient): masked
    (2, 0, 0, 1250),
]


@pytest.fixture()
def raw_bin(tmp_path):
    frames = np.zeros((3, 80, 80), np.uint16)
    for f, r, c, adu in HITS:
        frames[f, r, c] = adu
    path = tmp_path / "run.bin"
    path.write_bytes(_bin_bytes(frames) + b"\x01" * 100)  # + a partial frame
    rows, cols = np.mgrid[:80, :80]
    gradient = 0.04 + 0.0001 * cols + 0.00005 * rows  # keV / ADU, differs per pixel
    intercept = -0.5 + 0.01 * rows  # keV
    threshold = np.full((80, 80), 100.0)
    threshold[20, 30] = 1000.0
    gradient[50, 50] = np.nan
    np.savetxt(tmp_path / "g.txt", gradient)  # whitespace text
    np.save(tmp_path / "i.npy", intercept)
    np.savetxt(tmp_path / "t.txt", threshold)
    return path, gradient, intercept


def test_bin_exact_histogram_and_orientation(raw_bin, tmp_path, capsys):
    path, gradient, intercept = raw_bin
    out = tmp_path / "spectra.h5"
    code, summary, err = _run(
        ["events", path, "-o", out, "--gradients", tmp_path / "g.txt", "--intercepts",
         tmp_path / "i.npy", "--thresholds", tmp_path / "t.txt", "--bin-width-kev", "1",
         "--range-kev", "0", "160", "--charge-sharing", "none"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert summary["frames"] == 3 and summary["trailing_bytes_ignored"] == 100
    assert summary["pixels_bad_calibration"] == 1
    expected = np.zeros((80, 80, 160), np.uint32)
    for _, r, c, adu in HITS:
        if (r, c) in ((20, 30), (50, 50)):
            continue
        energy = gradient[r, c] * adu + intercept[r, c]
        assert abs(energy - round(energy)) > 0.01  # never on a bin edge
        expected[r, c, int(energy // 1.0)] += 1
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["pixel_histograms"][()], expected)
        assert f["bad_pixels"][50, 50] == 1
    assert summary["events_counted"] == 5


def test_bin_sniffed_by_content(raw_bin):
    path, *_ = raw_bin
    info = sniff(path)
    assert info.kind == "xcs_frames" and info.format == "hexitec-bin"
    assert info.metadata["frames"] == 3 and info.metadata["trailing_bytes"] == 100


def test_bin_bad_inputs_exit_2_and_leave_nothing(raw_bin, tmp_path, capsys):
    path, gradient, _ = raw_bin
    out = tmp_path / "never.h5"
    np.save(tmp_path / "g_small.npy", gradient[:79])
    code, _, err = _run(
        ["events", path, "-o", out, "--gradients", tmp_path / "g_small.npy", "--intercepts",
         tmp_path / "i.npy"], capsys,
    )  # fmt: skip
    assert code == 2 and "shape (79, 80)" in err and not out.exists()
    code, _, err = _run(["events", path, "-o", out], capsys)
    assert code == 2 and "--gradients" in err and not out.exists()
    tiny = tmp_path / "tiny.bin"
    tiny.write_bytes(b"\x00" * 1000)
    code, _, err = _run(
        ["events", tiny, "-o", out, "--gradients", tmp_path / "g.txt", "--intercepts",
         tmp_path / "i.npy"], capsys,
    )  # fmt: skip
    assert code == 2 and "less than one HEXITEC frame" in err and not out.exists()


# --------------------------------------------------------------------------- .hxt


def _hxt_bytes(energies, counts, *, version=3, prefix=b"run42", stamp=b"220101_120000"):
    """Byte by byte from the v3 layout; counts[row, col, bin] at pixel*n_bins + bin."""
    rows, cols, n_bins = counts.shape
    out = bytearray(b"HEXITECH")
    out += struct.pack("<Q", version)
    out += struct.pack("<9I", *range(1, 10))
    out += struct.pack("<i", len(prefix))
    out += prefix.ljust(100, b"\x00")
    out += stamp.ljust(16, b"\x00")
    out += struct.pack("<3I", rows, cols, n_bins)
    for e in energies:
        out += struct.pack("<d", e)
    for r in range(rows):
        for c in range(cols):
            for b in range(n_bins):
                out += struct.pack("<d", float(counts[r, c, b]))
    return bytes(out)


@pytest.mark.parametrize("shape", [(80, 80, 3), (2, 3, 4)])
def test_hxt_orientation_on_asymmetric_pattern(tmp_path, shape):
    rows, cols, n_bins = shape
    r, c, b = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(n_bins), indexing="ij")
    counts = r * 10000 + c * 10 + b  # every (row, col, bin) distinct
    energies = 1.0 + 0.5 * np.arange(n_bins)
    path = tmp_path / "s.hxt"
    path.write_bytes(_hxt_bytes(energies, counts))
    e, cube, header = read_hxt(path)
    np.testing.assert_array_equal(cube, counts)
    np.testing.assert_array_equal(e, energies)
    assert header.prefix == "run42" and header.timestamp == "220101_120000"
    assert header.motor_positions["mss_x"] == 1 and header.motor_positions["gal_rot2"] == 9
    info = sniff(path)
    assert info.kind == "xcs_spectra" and info.format == "hexitec-hxt"


def test_hxt_writer_produces_the_published_bytes(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, size=(2, 3, 4)).astype(float)
    energies = np.array([1.0, 2.0, 3.0, 4.0])
    write_hxt(tmp_path / "w.hxt", energies, counts, prefix="run42", timestamp="220101_120000",
              motor_positions=range(1, 10))  # fmt: skip
    assert (tmp_path / "w.hxt").read_bytes() == _hxt_bytes(energies, counts)


def test_compton_on_hxt_equals_compton_on_hdf5(tmp_path, capsys):
    centres = np.arange(60.0, 120.0, 0.25) + 0.125
    s_map = np.full((6, 6), 2.34)
    s_map[:, :3] = 0.72
    cube = spectra_for_s_map(s_map, centres, counts_map=40000.0, background_per_bin=1.0,
                             rng=np.random.default_rng(1))  # fmt: skip
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["energy_bins"] = centres
        f["pixel_histograms"] = cube.astype(np.uint32)
    (tmp_path / "s.hxt").write_bytes(_hxt_bytes(centres, cube))
    code_h, sum_h, err = _run(["compton", tmp_path / "s.h5", "-o", tmp_path / "a.h5"], capsys)
    assert code_h == 0, err
    code_x, sum_x, err = _run(["compton", tmp_path / "s.hxt", "-o", tmp_path / "b.h5"], capsys)
    assert code_x == 0, err
    assert sum_x["s_total"] == sum_h["s_total"] and sum_x["pixels"] == 36
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["s_parameter"][()], b["s_parameter"][()])


def test_hxt_bad_version_and_truncation(tmp_path, capsys):
    counts = np.ones((2, 3, 4))
    energies = np.arange(4.0) + 1
    v2 = tmp_path / "v2.hxt"
    v2.write_bytes(_hxt_bytes(energies, counts, version=2))
    code, _, err = _run(["compton", v2, "-o", tmp_path / "o.h5"], capsys)
    assert code == 2 and "version 2" in err and not (tmp_path / "o.h5").exists()
    cut = tmp_path / "cut.hxt"
    cut.write_bytes(_hxt_bytes(energies, counts)[:-8])
    code, _, err = _run(["compton", cut, "-o", tmp_path / "o.h5"], capsys)
    assert code == 2 and "truncated" in err and not (tmp_path / "o.h5").exists()
    with pytest.raises(EngineInputError, match="truncated"):
        sniff(cut)


def test_calibration_arrays_sniffed_and_wrong_shape_rejected(raw_bin, tmp_path):
    info = sniff(tmp_path / "g.txt")  # whitespace text with one NaN
    assert info.format == "hexitec-calibration-array"
    assert info.metadata["non_finite_pixels"] == 1
    assert "1 non-finite (bad) pixels" in info.describe()
    assert sniff(tmp_path / "i.npy").format == "hexitec-calibration-array"
    np.savetxt(tmp_path / "short.txt", np.ones((79, 80)))
    with pytest.raises(EngineInputError, match=r"shape \(79, 80\)"):
        sniff(tmp_path / "short.txt")
