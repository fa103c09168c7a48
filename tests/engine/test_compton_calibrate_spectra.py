"""``compton-calibrate-spectra``: standards given as spectra files plus their known 1 - x.

Expected coefficients are those of the line planted in the standards' spectra (built by
``spectra_for_s_map`` from S values chosen here), not the engine's fit.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from analysis_engine.compton.commands import run_compton_calibrate_spectra
from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.compton import spectra_for_s_map


def _write(path, s, seed):
    energy = np.arange(78.0, 110.0, 0.25)
    cube = spectra_for_s_map(
        np.full((4, 4), s), energy, counts_map=np.full((4, 4), 5e6), rng=np.random.default_rng(seed)
    )
    with h5py.File(path, "w") as f:
        f["energy_bins"] = energy
        f["pixel_histograms"] = cube
    return path


def test_two_standards_recover_the_planted_line(tmp_path):
    # planted S = 0.70 + 0.60 (1 - x) at 1 - x = 0.2 and 0.8
    paths = [_write(tmp_path / "a.h5", 0.82, 1), _write(tmp_path / "b.h5", 1.18, 2)]
    summary = run_compton_calibrate_spectra(
        paths, tmp_path / "cal.json", one_minus_x=[0.2, 0.8], background="none"
    )
    fit = summary["calibration"]
    # 8e7 counts per standard: S to about 1e-4, so A, B within 0.5 %
    assert fit["intercept"] == pytest.approx(0.70, rel=5e-3)
    assert fit["slope"] == pytest.approx(0.60, rel=5e-3)
    assert (tmp_path / "cal.json").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [([0.2], r"one_minus_x gives 1 value\(s\) for 2 standard spectra"), ("0.2", "must be a list")],
)
def test_one_minus_x_must_match_the_spectra(tmp_path, values, message):
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    with pytest.raises(EngineInputError, match=message):
        run_compton_calibrate_spectra(paths, tmp_path / "cal.json", one_minus_x=values)
    assert not (tmp_path / "cal.json").exists()
