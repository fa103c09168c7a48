"""EIS fit with uncertainties, D_overall and cycling statistics of the electrochem stage.

Expected values come from the circuit's closed-form impedance written out here (not the
engine's), and from the Warburg relation sigma = R T / (sqrt(2) n^2 F^2 A c sqrt(D)) computed
here with CODATA constants.
"""

import h5py
import numpy as np
import pytest

from analysis_engine.electrochem.commands import run_electrochem
from analysis_engine.electrochem.eis import fit_randles_warburg
from analysis_engine.errors import EngineInputError
from analysis_engine.io.tables import write_table

R, F = 8.314462618, 96485.33212  # J/(mol K), C/mol


def circuit(f, r_e, r_ct, c, sigma):
    w = 2 * np.pi * np.asarray(f)
    z_rc = r_ct / (1 + (w * r_ct * c) ** 2) * (1 - 1j * w * r_ct * c)
    return r_e + z_rc + sigma / np.sqrt(w) - 1j * sigma / np.sqrt(w)


def warburg(d_cm2_s, area_cm2, conc_mol_cm3, t_k=298.15):
    return R * t_k / (np.sqrt(2) * F**2 * area_cm2 * conc_mol_cm3 * np.sqrt(d_cm2_s))


@pytest.mark.parametrize("values", [(3.0, 40.0, 2e-5, 150.0), (12.0, 250.0, 5e-6, 900.0)])
def test_fit_recovers_circuit_values_exactly_without_noise(values):
    f = np.logspace(5, -2, 60)
    fit = fit_randles_warburg(f, circuit(f, *values))
    got = (fit.r_e_ohm, fit.r_ct_ohm, fit.c_dl_f, fit.sigma_ohm_s05)
    np.testing.assert_allclose(got, values, rtol=1e-6)
    assert fit.relative_rms < 1e-8


def test_uncertainties_cover_the_scatter_of_noisy_fits():
    truth = (3.0, 40.0, 2e-5, 150.0)
    f = np.logspace(5, -2, 50)
    z = circuit(f, *truth)
    rng = np.random.default_rng(7)
    fits = [fit_randles_warburg(f, z * (1 + 0.01 * rng.standard_normal(f.size))) for _ in range(20)]
    r_ct = np.array([x.r_ct_ohm for x in fits])
    reported = np.median([x.r_ct_sigma_ohm for x in fits])
    # the reported 1-sigma agrees with the empirical scatter within a factor 1.5
    assert 1 / 1.5 < reported / r_ct.std(ddof=1) < 1.5
    assert abs(r_ct.mean() - truth[1]) < 3 * r_ct.std(ddof=1) / np.sqrt(len(fits)) + 0.05


@pytest.mark.parametrize(
    "d_cm2_s,label", [(6.3e-11, "DIT"), (3.4e-11, "slurry-cast")]
)  # the paper's D_overall
def test_d_overall_of_the_paper_recovered_from_a_synthesised_spectrum(tmp_path, d_cm2_s, label):
    area, conc = 1.131, 1.0e-3
    sigma = warburg(d_cm2_s, area, conc)
    f = np.logspace(5, -2, 45)
    z = circuit(f, 4.0, 60.0, 1e-5, sigma)
    csv = tmp_path / f"{label}.csv"
    write_table(csv, {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag})
    out = tmp_path / "out.h5"
    summary = run_electrochem(csv, out, area_cm2=area, concentration_mol_cm3=conc)
    assert summary["d_overall_cm2_s"] == pytest.approx(d_cm2_s, rel=1e-5)
    assert summary["r_ct_ohm"] == pytest.approx(60.0, rel=1e-5)
    with h5py.File(out, "r") as h5:
        fitted = h5["eis/fit_z_real_ohm"][()] + 1j * h5["eis/fit_z_imag_ohm"][()]
        np.testing.assert_allclose(h5["eis/z_real_ohm"][()], z.real, rtol=1e-8)
    np.testing.assert_allclose(fitted, z, rtol=1e-5)
    # a twice larger electrode area gives a four times smaller D for the same spectrum
    half = run_electrochem(csv, tmp_path / "b.h5", area_cm2=2 * area, concentration_mol_cm3=conc)
    assert half["d_overall_cm2_s"] == pytest.approx(d_cm2_s / 4, rel=1e-5)


def test_too_few_points_is_refused():
    f = np.array([1e4, 1e3, 1e2, 10.0, 1.0])
    with pytest.raises(EngineInputError, match="at least 6 frequencies"):
        fit_randles_warburg(f, circuit(f, 3.0, 40.0, 2e-5, 150.0))


def test_non_physical_fit_is_refused():
    # a spectrum whose best circuit has a negative charge-transfer resistance: the real part
    # rises towards high frequency (inductive-like) instead of falling
    f = np.logspace(5, -1, 40)
    with pytest.raises(EngineInputError, match=r"non-physical EIS fit: R_CT = -30 < 0"):
        fit_randles_warburg(f, circuit(f, 50.0, -30.0, 2e-3, 20.0))
    # a low-frequency arm bending the wrong way: a negative Warburg coefficient
    with pytest.raises(EngineInputError, match=r"non-physical EIS fit: Warburg sigma = -10 < 0"):
        fit_randles_warburg(f, circuit(f, 5.0, 20.0, 1e-4, -10.0))


def test_cycling_statistics(tmp_path):
    cycles = np.arange(1, 201)
    discharge = 188.0 * (1 - 0.10 * (cycles - 1) / 199)  # 90 % retention at cycle 200
    charge = discharge / 0.996
    charge[0] = 190.0
    csv = tmp_path / "cyc.csv"
    write_table(
        csv,
        {"cycle": cycles, "charge_capacity_mah_g": charge, "discharge_capacity_mah_g": discharge},
    )
    s = run_electrochem(csv, tmp_path / "c.h5")
    assert s["table_kind"] == "cycling" and s["cycles"] == 200
    assert s["retention_pct"] == pytest.approx(90.0, abs=1e-6)
    assert s["mean_coulombic_efficiency_pct"] == pytest.approx(99.6, abs=1e-6)
    with h5py.File(tmp_path / "c.h5", "r") as h5:
        assert h5["cycling/coulombic_efficiency_pct"][0] == pytest.approx(100 * 188 / 190)
