"""The ``compton`` command end to end on small synthetic spectra files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from analysis_engine.cli import main
from analysis_engine.compton.commands import run_compton
from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.compton import spectra_for_s_map

CENTRES = np.arange(60.0, 120.0, 0.25) + 0.125


def _write_spectra(path, cube, energy=CENTRES, *, with_energy=True, dtype=np.uint32):
    """Minimal writer of the ``events`` output layout (independent of io.spectra)."""
    with h5py.File(path, "w") as f:
        if with_energy:
            f["energy_bins"] = energy
        f["pixel_histograms"] = np.asarray(cube).astype(dtype)
        f["summed_histogram"] = np.asarray(cube).sum(axis=(0, 1)).astype(np.uint64)


def _planted(tmp_path, rng_seed=0):
    s_map = np.full((8, 8), 2.34)
    s_map[:, :4] = 0.72  # left half charged-like, right half discharged-like
    cube = spectra_for_s_map(
        s_map,
        CENTRES,
        counts_map=40000.0,
        background_per_bin=1.0,
        rng=np.random.default_rng(rng_seed),
    )
    path = tmp_path / "spectra.h5"
    _write_spectra(path, cube)
    return path, s_map, cube


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None
    return code, summary, captured.err


def test_compton_command_maps_and_summary(tmp_path, capsys):
    path, s_map, cube = _planted(tmp_path)
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[1:7, 1:7] = 1
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "out.h5"
    code, summary, err = _run(
        [
            "compton",
            str(path),
            "-o",
            str(out),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--background",
            "none",  # the idealised two-Gaussian spectra: the chain without corrections
        ],
        capsys,
    )
    assert code == 0, err
    assert summary["pixels"] == 36 and summary["pixels_valid"] == 36
    with h5py.File(out) as f:
        s = f["s_parameter"][()]
        sigma = f["s_parameter_sigma"][()]
        li = f["li_stoichiometry"][()]
        for name in ("peak_center_kev", "peak_fwhm_kev", "compton_counts", "s_parameter_sigma"):
            assert f[name].shape == (8, 8)
            assert np.all(np.isnan(f[name][()][mask == 0]))
        pz, j = f["profile/pz_au"][()], f["profile/j"][()]
        centre = f["peak_center_kev"][()]
    inside = mask == 1
    # the flat background lowers S slightly below the planted (background-free) value
    z = (s[inside] - s_map[inside]) / sigma[inside]
    assert np.all(np.abs(z) < 8)
    assert np.mean(np.abs(s[inside] - s_map[inside]) / s_map[inside]) < 0.02
    np.testing.assert_allclose(li[inside], (s[inside] - 0.650) / 2.309, rtol=1e-5)
    assert np.all(np.abs(centre[inside] - 93.87) < 0.1)
    assert summary["li_total"] == pytest.approx((summary["s_total"] - 0.650) / 2.309)
    assert 0.72 < summary["s_total"] < 2.34
    assert np.trapezoid(j[np.abs(pz) < 5], pz[np.abs(pz) < 5]) == pytest.approx(1.0, abs=0.05)


def test_run_compton_attenuation_and_calibration(tmp_path):
    path, _, _ = _planted(tmp_path)
    base = run_compton(path, tmp_path / "a.h5", fit_peaks=False)
    scaled = run_compton(
        path, tmp_path / "b.h5", attenuation=1.015, calibration=(0.5, 2.0), fit_peaks=False
    )
    assert scaled["s_total"] == pytest.approx(base["s_total"] * 1.015, rel=1e-9)
    assert scaled["li_total"] == pytest.approx((scaled["s_total"] - 0.5) / 2.0, rel=1e-9)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_energy", "energy_bins"),
        ("narrow_range", "does not cover"),
        ("all_zero", "zero counts"),
        ("negative", "negative counts"),
        ("zero_slope", "slope is zero"),
    ],
)
def test_bad_input_exit_2_and_no_output(tmp_path, capsys, case, message):
    cube = np.ones((4, 4, CENTRES.size))
    path = tmp_path / "in.h5"
    extra = []
    if case == "no_energy":
        _write_spectra(path, cube, with_energy=False)
    elif case == "narrow_range":
        keep = CENTRES > 95.0
        _write_spectra(path, cube[..., keep], energy=CENTRES[keep])
    elif case == "all_zero":
        _write_spectra(path, np.zeros_like(cube))
    elif case == "negative":
        bad = cube.copy()
        bad[1, 2, 100] = -3
        _write_spectra(path, bad, dtype=np.int32)
    else:
        _write_spectra(path, cube)
        extra = ["--calibration", "1.0,0"]
    out = tmp_path / "out.h5"
    code, _, err = _run(["compton", str(path), "-o", str(out), *extra], capsys)
    assert code == 2
    assert message in err
    assert not out.exists()


def test_mask_shape_mismatch_is_input_error(tmp_path):
    path, _, _ = _planted(tmp_path)
    with pytest.raises(EngineInputError, match="mask has shape"):
        run_compton(path, tmp_path / "o.h5", mask=np.ones((5, 5)))
