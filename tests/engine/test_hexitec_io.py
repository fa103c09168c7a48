"""HEXITEC readers, writers, upload inspection and the ``events`` CLI on good and bad files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from analysis_engine.cli import main
from analysis_engine.errors import EngineInputError
from analysis_engine.io.hexitec import (
    Calibration,
    HexitecEventReader,
    inspect_events,
    inspect_frames,
    write_hexitec_events,
    write_hexitec_frames,
)
from analysis_engine.io.sniff import sniff
from analysis_engine.io.spectra import inspect_spectra, read_spectra, write_spectra


def _events(tmp_path, name="events.h5", **overrides):
    frame = np.array([0, 0, 1, 3, 3, 3, 7], dtype=np.uint32)
    row = np.array([1, 1, 5, 9, 9, 10, 79], dtype=np.uint8)
    col = np.array([1, 2, 5, 9, 10, 10, 79], dtype=np.uint8)
    energy = np.array([60.2, 33.3, 93.9, 10.0, 20.0, 30.0, 115.0], dtype=np.float32)
    kw = dict(frame=frame, row=row, col=col, energy_kev=energy, n_frames=8)
    kw.update(overrides)
    path = tmp_path / name
    write_hexitec_events(path, **kw)
    return path


def _run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_events_cli_writes_contract_outputs(tmp_path, capsys):
    path = _events(tmp_path)
    out = tmp_path / "spectra.h5"
    code, stdout, _ = _run_cli(
        ["events", str(path), "-o", str(out), "--bin-width-kev", "0.1", "--range-kev", "0", "100"],
        capsys,
    )
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["frames"] == 8
    assert summary["events_in"] == 7
    assert summary["clusters"] == {"1": 2, "2": 1, "3+": 1}
    # paper mode: 60.2 keV + 33.3 keV -> 93.5 keV at (1, 1); 93.9 at (5, 5); the triple is
    # dropped; 115 keV lies outside 0..100 keV
    assert summary["events_counted"] == 2 and summary["events_out_of_range"] == 1
    assert summary["pixels_masked"] == 0
    with h5py.File(out) as f:
        assert f["pixel_histograms"].shape == (80, 80, 1000)
        assert f["pixel_histograms"].dtype == np.uint32
        assert f["energy_bins"].shape == (1000,)
        assert f["summed_histogram"][()].sum() == 2
    bins, cube, attrs = read_spectra(out)
    assert bins[0] == pytest.approx(0.05) and bins[-1] == pytest.approx(99.95)
    assert cube[1, 1, 935] == 1 and cube[5, 5, 939] == 1
    assert attrs["charge_sharing"] == "paper"
    assert sniff(out).kind == "xcs_spectra"
    assert inspect_spectra(out)["n_bins"] == 1000


def test_adu_events_use_the_calibration(tmp_path):
    gain = np.full((80, 80), 0.05)
    offset = np.full((80, 80), -1.0)
    gain[5, 5] = 0.1
    path = _events(
        tmp_path,
        energy_kev=None,
        adu=np.array([100, 200, 300, 400, 500, 600, 700], dtype=np.uint16),
        calibration=Calibration(gain, offset),
    )
    info = inspect_events(path)
    assert info["values"] == "adu" and info["has_calibration"] and info["frames"] == 8
    assert sniff(path).kind == "xcs_events"
    from analysis_engine.events.commands import run_events

    run_events(path, tmp_path / "s.h5", bin_width_kev=1.0, range_kev=(0, 100))
    cube = read_spectra(tmp_path / "s.h5")[1]
    assert cube[5, 5, 29] == 1  # 300 ADU * 0.1 - 1 = 29 keV
    assert cube[1, 2, 13] == 1  # 4 + 9 keV summed onto (1, 2), the larger share


def test_frames_inspection_and_sniffing(tmp_path):
    frames = np.zeros((5, 80, 80), dtype=np.uint16)
    cal = Calibration(np.full((80, 80), 0.04), np.full((80, 80), -2.0))
    path = tmp_path / "frames.h5"
    write_hexitec_frames(path, frames, calibration=cal, threshold_kev=5.0)
    info = inspect_frames(path)
    assert info["frames"] == 5 and info["threshold_kev"] == 5.0
    assert sniff(path).kind == "xcs_frames"


def test_reader_never_splits_a_frame(tmp_path):
    rng = np.random.default_rng(0)
    frame = np.sort(rng.integers(0, 50, 1000)).astype(np.uint32)
    path = tmp_path / "e.h5"
    write_hexitec_events(path, frame=frame, row=np.zeros(1000, np.uint8),
                         col=np.zeros(1000, np.uint8), energy_kev=np.ones(1000, np.float32))  # fmt: skip
    for block, reuse in ((1, False), (7, True), (64, False), (999, True), (5000, True)):
        with HexitecEventReader(path) as reader:
            # copies, because reused buffers are only valid until the next-but-one block
            blocks = [
                type(b)(b.frame.copy(), b.row, b.col, b.values, b.start)
                for b in reader.blocks(block, reuse_buffers=reuse)
            ]
        joined = np.concatenate([b.frame for b in blocks])
        np.testing.assert_array_equal(joined, frame)
        for a, b in zip(blocks, blocks[1:], strict=False):
            assert a.frame[-1] < b.frame[0]
            assert b.start == a.start + len(a.frame)


def _broken(tmp_path, kind):
    path = _events(tmp_path, name=f"{kind}.h5")
    with h5py.File(path, "a") as f:
        if kind == "missing":
            del f["events/col"]
        elif kind == "dtype":
            data = f["events/energy_kev"][()]
            del f["events/energy_kev"]
            f["events/energy_kev"] = data.astype(np.int32)
        elif kind == "unsorted":
            data = f["events/frame"][()]
            data[4] = 0
            f["events/frame"][...] = data
        elif kind == "pixel":
            data = f["events/row"][()]
            data[2] = 80
            f["events/row"][...] = data
        elif kind == "length":
            del f["events/row"]
            f["events/row"] = np.zeros(3, np.uint8)
    if kind == "truncated":
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "/events/col"),
        ("dtype", "energy_kev"),
        ("unsorted", "not monotonic"),
        ("pixel", "outside the 80 x 80"),
        ("length", "differ in length"),
        ("truncated", "truncated"),
    ],
)
def test_bad_event_files_exit_2_and_leave_no_output(tmp_path, capsys, kind, message):
    path = _broken(tmp_path, kind)
    out = tmp_path / "out.h5"
    code, stdout, stderr = _run_cli(["events", str(path), "-o", str(out)], capsys)
    assert code == 2
    assert message in stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.h5*"))  # no temporary left behind either


def test_frames_with_wrong_shape_or_attrs_are_rejected(tmp_path, capsys):
    cal = Calibration(np.full((80, 80), 0.04), np.full((80, 80), -2.0))
    path = tmp_path / "f.h5"
    write_hexitec_frames(path, np.zeros((3, 80, 80), np.uint16), calibration=cal,
                         threshold_kev=5.0)  # fmt: skip
    with h5py.File(path, "a") as f:
        f.attrs["rows"] = 64
    with pytest.raises(EngineInputError, match=r"expected \(n_frames, 64, 80\)"):
        inspect_frames(path)
    bad = tmp_path / "g.h5"
    with h5py.File(bad, "w") as f:
        f["raw_frames"] = np.zeros((3, 80, 79), np.uint16)
        f.attrs["threshold_kev"] = 5.0
    code, _, stderr = _run_cli(["events", str(bad), "-o", str(tmp_path / "o.h5")], capsys)
    assert code == 2 and "(3, 80, 79)" in stderr
    wrong_dtype = tmp_path / "h.h5"
    with h5py.File(wrong_dtype, "w") as f:
        f["raw_frames"] = np.zeros((3, 80, 80), np.float32)
        f.attrs["threshold_kev"] = 5.0
    with pytest.raises(EngineInputError, match="expected uint16"):
        inspect_frames(wrong_dtype)


def test_adu_events_without_calibration_and_bad_options(tmp_path, capsys):
    path = tmp_path / "adu.h5"
    with h5py.File(path, "w") as f:
        f["events/frame"] = np.zeros(2, np.uint32)
        f["events/row"] = np.zeros(2, np.uint8)
        f["events/col"] = np.zeros(2, np.uint8)
        f["events/adu"] = np.zeros(2, np.uint16)
    with pytest.raises(EngineInputError, match="no calibration"):
        inspect_events(path)
    good = _events(tmp_path)
    for options, text in (
        (["--range-kev", "100", "10"], "empty"),
        (["--bin-width-kev", "0.07"], "whole number"),
        (["--charge-sharing", "magic"], "invalid choice"),
    ):
        code, _, stderr = _run_cli(["events", str(good), "-o", str(tmp_path / "x.h5"), *options],
                                   capsys)  # fmt: skip
        assert code == 2 and text in stderr


def test_spectra_roundtrip_and_validation(tmp_path):
    bins = np.arange(0.025, 10, 0.05)
    cube = np.arange(4 * 5 * bins.size, dtype=np.uint32).reshape(4, 5, -1)
    bad = np.zeros((4, 5), bool)
    bad[1, 2] = True
    write_spectra(tmp_path / "s.h5", bins, cube, attrs={"summary": {"a": 1}}, bad_pixels=bad)
    b2, c2, attrs = read_spectra(tmp_path / "s.h5")
    np.testing.assert_array_equal(b2, bins)
    np.testing.assert_array_equal(c2, cube)
    assert attrs["summary"] == {"a": 1}
    np.testing.assert_array_equal(attrs["bad_pixels"], bad)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["energy_bins"] = bins
        f["pixel_histograms"] = cube[..., :-1]
    with pytest.raises(EngineInputError, match="to match /energy_bins"):
        read_spectra(tmp_path / "t.h5")


def test_calibration_file_overrides_and_masks_pixels(tmp_path):
    from analysis_engine.events.commands import run_events
    from analysis_engine.io.hexitec import write_calibration

    gain = np.full((80, 80), 0.05)
    offset = np.full((80, 80), -1.0)
    path = _events(
        tmp_path,
        energy_kev=None,
        adu=np.array([100, 200, 300, 400, 500, 600, 700], dtype=np.uint16),
        calibration=Calibration(gain, offset),
    )
    better_gain = gain * 1.1
    better_gain[5, 5] = np.nan  # a pixel the calibration rejected
    bad = np.zeros((80, 80), bool)
    bad[5, 5] = True
    write_calibration(tmp_path / "cal.h5", Calibration(better_gain, offset, bad))
    summary = run_events(
        path, tmp_path / "s.h5", bin_width_kev=0.5, range_kev=(0, 100),
        calibration_path=tmp_path / "cal.h5",
    )  # fmt: skip
    assert summary["pixels_masked"] == 1 and summary["events_masked"] == 1
    bins, cube, attrs = read_spectra(tmp_path / "s.h5")
    assert cube[5, 5].sum() == 0
    assert attrs["bad_pixels"][5, 5]
    # 100 ADU * 0.055 - 1 = 4.5 keV and 200 ADU -> 10.0 keV: summed 14.5 keV onto (1, 2)
    assert cube[1, 2, 29] == 1
