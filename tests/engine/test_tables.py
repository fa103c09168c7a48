"""Cycling and EIS CSV tables (io.tables), their sniffing, and the electrochem figures."""

import numpy as np
import pytest

from analysis_engine.electrochem import (
    capacity_retention,
    coulombic_efficiency,
    diffusivity_from_warburg,
    fit_randles_warburg,
    randles_warburg_impedance,
    summarize_cycling,
    warburg_from_diffusivity,
)
from analysis_engine.errors import EngineInputError
from analysis_engine.io.sniff import sniff
from analysis_engine.io.tables import read_table, write_table


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cycling_roundtrip_and_sniff(tmp_path):
    cycles = np.arange(1, 11)
    charge = np.linspace(190, 185, 10)
    discharge = charge * 0.996
    p = tmp_path / "cyc.csv"
    write_table(
        p,
        {
            "cycle": cycles,
            "charge_capacity_mah_g": charge,
            "discharge_capacity_mah_g": discharge,
        },
        metadata={"cell": "DIT-1"},
    )
    table = read_table(p)
    assert table.kind == "cycling" and table.n_rows == 10
    np.testing.assert_allclose(table.columns["discharge_capacity_mah_g"], discharge, rtol=1e-6)
    assert table.metadata == {"cell": "DIT-1"}
    info = sniff(p)
    assert (info.kind, info.metadata["cycles"]) == ("cycling", 10)


def test_eis_header_spellings_semicolons_and_units(tmp_path):
    p = _write(
        tmp_path,
        "eis.csv",
        "# cell: SC-1\nFrequency (Hz);Z_real (Ohm);Z_imag (Ohm)\n1000;3.1;-0.5\n1;40;-12\n",
    )
    info = sniff(p, expected_kind="eis")
    assert info.kind == "eis"
    assert info.metadata["frequency_range_hz"] == [1.0, 1000.0]
    np.testing.assert_array_equal(read_table(p).columns["z_imag_ohm"], [-0.5, -12.0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frequency_hz,z_real_ohm\n1,2\n", "lacks the column(s) z_imag_ohm"),
        ("frequency_hz,z_real_ohm,z_imag_ohm\n1,abc,2\n", "line 2: column z_real_ohm holds 'abc'"),
        (
            "frequency_hz,z_real_ohm,z_imag_ohm\n1,2,3\n2,nan,1\n",
            "line 3: column z_real_ohm is nan",
        ),
        ("frequency_hz,z_real_ohm,z_imag_ohm\n1,,3\n", "line 2: column z_real_ohm is empty"),
        ("frequency_hz,z_real_ohm,z_imag_ohm\n", "no data rows"),
        ("frequency_hz,z_real_ohm,z_imag_ohm\n0,1,2\n", "must be > 0 Hz"),
        ("cycle,charge_capacity_mah_g,discharge_capacity_mah_g\n1.5,1,1\n", "whole numbers"),
        ("time_s,voltage_v\n1,3.7\n", "neither a cycling table"),
        ("# only a comment\n", "no header row"),
        ("", "is empty"),
    ],
)
def test_bad_tables_are_explained(tmp_path, text, message):
    p = _write(tmp_path, "bad.csv", text)
    with pytest.raises(EngineInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sniff(p)


def test_declared_kind_names_missing_columns_and_plain_text_is_other(tmp_path):
    cyc = _write(tmp_path, "c.csv", "cycle,charge_capacity_mah_g,discharge_capacity_mah_g\n1,2,2\n")
    with pytest.raises(EngineInputError, match="declared as eis but lacks"):
        sniff(cyc, expected_kind="eis")
    notes = _write(tmp_path, "notes.txt", "beam was unstable at 14:00\n")
    assert sniff(notes).kind == "other"


def test_coulombic_efficiency_and_retention_analytic():
    charge = np.array([190.0, 188.0, 187.0, 0.0])
    discharge = np.array([188.0, 187.248, 186.252, 0.0])
    ce = coulombic_efficiency(charge, discharge)
    np.testing.assert_allclose(ce[:3], [100 * 188 / 190, 99.6, 99.6], rtol=1e-12)
    assert np.isnan(ce[3])
    assert capacity_retention([188.0, 180.0, 169.2]) == pytest.approx(90.0, rel=1e-12)
    assert capacity_retention([188.0, 180.0, 169.2], at_cycle=2) == pytest.approx(
        100 * 180 / 188, rel=1e-12
    )
    with pytest.raises(EngineInputError, match="cycles must lie in 1..3"):
        capacity_retention([1.0, 2.0, 3.0], at_cycle=4)
    s = summarize_cycling([2, 1, 3], [188 / 0.996, 190, 170 / 0.996], [188, 188, 170])
    assert s.first_charge_mah_g == 190 and s.retention_cycle == 3
    assert s.mean_coulombic_efficiency_pct == pytest.approx(99.6, rel=1e-12)
    assert s.retention_pct == pytest.approx(100 * 170 / 188, rel=1e-12)


def test_warburg_diffusivity_roundtrip_and_randles_fit():
    d = 6.3e-11
    sigma = warburg_from_diffusivity(d)
    assert diffusivity_from_warburg(sigma) == pytest.approx(d, rel=1e-12)
    # sigma ~ 1 / sqrt(D): halving D raises sigma by sqrt(2)
    assert warburg_from_diffusivity(d / 2) / sigma == pytest.approx(np.sqrt(2), rel=1e-12)
    f = np.logspace(5, -2, 50)
    z = randles_warburg_impedance(f, r_e_ohm=3.0, r_ct_ohm=40.0, c_dl_f=2e-5, sigma_ohm_s05=sigma)
    # analytic check at 100 kHz: R_e + R_CT / (1 + (w R C)^2) + sigma / sqrt(w)
    w = 2 * np.pi * 1e5
    assert z[0].real == pytest.approx(
        3.0 + 40.0 / (1 + (w * 40.0 * 2e-5) ** 2) + sigma / np.sqrt(w), rel=1e-12
    )
    noisy = z * (1 + 0.002 * np.random.default_rng(1).standard_normal(f.size))
    fit = fit_randles_warburg(f, noisy)
    assert fit.r_ct_ohm == pytest.approx(40.0, rel=0.02)
    assert fit.r_e_ohm == pytest.approx(3.0, rel=0.05)
    assert diffusivity_from_warburg(fit.sigma_ohm_s05) == pytest.approx(d, rel=0.05)
