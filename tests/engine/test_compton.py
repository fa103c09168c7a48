"""Compton kinematics, S-parameter, profiles, calibration and the xraylib theory curve."""

from __future__ import annotations

import numpy as np
import pytest

from analysis_engine.compton import (
    DEFAULT_CALIBRATION,
    FLAG_LOW_COUNTS,
    PAPER_TABLE2,
    LinearCalibration,
    compound_profile,
    compton_energy_kev,
    compton_profile,
    dpz_denergy,
    energy_from_pz,
    fit_calibration,
    klein_nishina_factor,
    pz_from_energy,
    s_parameter,
    spectrum_from_profile,
    theoretical_s_curve,
    window_weights,
)
from analysis_engine.compton.calibration import parse_calibration
from analysis_engine.compton.profile import bin_edges_from_centres
from analysis_engine.errors import EngineInputError
from analysis_engine.synthetic.compton import (
    expected_counts,
    profile_for_s_parameter,
    spectra_for_s_map,
)

CENTRES = np.arange(80.0, 110.0, 0.25) + 0.125  # the events command's 0.25 keV bins
EDGES = bin_edges_from_centres(CENTRES)


# --- Eq. 6 -------------------------------------------------------------------------------


def test_compton_line_and_window_edges_match_hand_values():
    assert compton_energy_kev(115.0, 90.0) == pytest.approx(93.87, abs=0.005)
    edges = energy_from_pz([-5.0, -1.0, 1.0, 5.0])
    np.testing.assert_allclose(edges, [89.53, 92.99, 94.76, 98.38], atol=0.006)
    assert float(pz_from_energy(compton_energy_kev())) == pytest.approx(0.0, abs=1e-9)


def test_eq6_hand_computed_point_and_jacobian():
    # E1 = 115, E2 = 100 keV, theta = 90 deg:
    # (100 - 115 + 115*100/510.99895) / sqrt(115^2 + 100^2) * 137.036
    # = (-15 + 22.50494) / 152.39751 * 137.036 = 6.7484 a.u.
    assert float(pz_from_energy(100.0)) == pytest.approx(6.7484, abs=2e-4)
    e = np.array([88.0, 93.87, 99.0])
    h = 1e-5
    numeric = (pz_from_energy(e + h) - pz_from_energy(e - h)) / (2 * h)
    np.testing.assert_allclose(dpz_denergy(e), numeric, rtol=1e-7)
    # other geometry round trip
    pz = np.linspace(-8, 8, 17)
    back = pz_from_energy(
        energy_from_pz(pz, incident_kev=60.0, angle_deg=150.0), incident_kev=60.0, angle_deg=150.0
    )
    np.testing.assert_allclose(back, pz, atol=1e-9)


def test_klein_nishina_factor_is_eq5_ratio():
    r = 98.0 / 115.0
    r0 = compton_energy_kev() / 115.0
    expected = r**2 * (r + 1 / r - 1) / (r0**2 * (r0 + 1 / r0 - 1))
    assert float(klein_nishina_factor(98.0)) == pytest.approx(expected, rel=1e-12)
    assert float(klein_nishina_factor(compton_energy_kev())) == pytest.approx(1.0, rel=1e-12)


# --- exact window integration --------------------------------------------------------------


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_window_weights_exact_for_flat_spectrum(interpolation):
    # 10 counts per 0.25 keV bin = 40 counts/keV; |p_z| < 1 spans 92.9928-94.7614 keV
    weights = window_weights(EDGES, [(0.0, 1.0), (1.0, 5.0)], interpolation=interpolation)
    flat = np.full(CENTRES.size, 10.0)
    e = energy_from_pz([-5.0, -1.0, 1.0, 5.0])
    expected = [40 * (e[2] - e[1]), 40 * ((e[1] - e[0]) + (e[3] - e[2]))]
    np.testing.assert_allclose(flat @ weights, expected, rtol=1e-12)


def test_cubic_window_weights_exact_for_quadratic_density():
    a, b, c = 3.0, 0.7, -0.05  # density a + b (E - 94) + c (E - 94)^2 per keV

    def cumulative(e):
        x = e - 94.0
        return a * x + b * x**2 / 2 + c * x**3 / 3

    counts = np.diff(cumulative(EDGES))
    e = energy_from_pz([-1.0, 1.0])
    got = counts @ window_weights(EDGES, [(0.0, 1.0)])[:, 0]
    assert got == pytest.approx(cumulative(e[1]) - cumulative(e[0]), rel=1e-10)


# --- S-parameter ------------------------------------------------------------------------------


@pytest.mark.parametrize("s_target", [0.65, 0.88, 2.06, 2.40])
def test_s_of_planted_profile_recovered_without_blur(s_target):
    profile = profile_for_s_parameter(s_target)
    plain = expected_counts(
        EDGES, profile, total_counts=1e6, resolution_fwhm_kev=0.0, klein_nishina=False
    )
    assert float(s_parameter(plain, CENTRES).s) == pytest.approx(s_target, rel=1e-3)
    # KN-weighted spectrum + KN correction gives the profile's S back as well
    weighted = expected_counts(
        EDGES, profile, total_counts=1e6, resolution_fwhm_kev=0.0, klein_nishina=True
    )
    assert float(s_parameter(weighted, CENTRES, klein_nishina=True).s) == pytest.approx(
        s_target, rel=1e-3
    )


def test_resolution_lowers_measured_s_and_planting_measured_s_works():
    profile = profile_for_s_parameter(2.4)
    blurred = expected_counts(EDGES, profile, total_counts=1e6, resolution_fwhm_kev=0.8)
    measured = float(s_parameter(blurred, CENTRES).s)
    assert 1.8 < measured < 2.1  # ~0.8 keV FWHM is about half the valence window
    planted = spectra_for_s_map(np.array([0.65, 2.4]), CENTRES, counts_map=1e5, s_of="measured")
    np.testing.assert_allclose(s_parameter(planted, CENTRES).s, [0.65, 2.4], rtol=1e-9)


def test_poisson_s_scatter_matches_reported_sigma():
    rng = np.random.default_rng(7)
    expected = spectra_for_s_map(
        np.array([1.5]), CENTRES, counts_map=20000.0, background_per_bin=2.0
    )[0]
    s0 = float(s_parameter(expected, CENTRES).s)
    draws = rng.poisson(expected, size=(2000, expected.size))
    maps = s_parameter(draws, CENTRES)
    z = (maps.s - s0) / maps.s_sigma
    assert abs(z.mean()) < 0.15  # standard error of the mean is 0.022
    assert 0.92 < z.std() < 1.08
    assert 0.63 < np.mean(np.abs(z) < 1) < 0.73
    # sigma_S / S = sqrt(1/A + 1/B) up to the partial-bin weights
    rel = maps.s_sigma / maps.s
    approx = np.sqrt(1 / maps.low_integral + 1 / maps.high_integral)
    np.testing.assert_allclose(rel, approx, rtol=0.03)


def test_low_count_and_empty_pixels_are_flagged_not_fitted():
    spectra = np.zeros((3, CENTRES.size))
    spectra[0] = spectra_for_s_map(np.array([1.0]), CENTRES, counts_map=1e4)[0]
    spectra[1] = spectra[0] * 30 / 1e4  # 30 counts in all
    maps = s_parameter(spectra, CENTRES, min_counts=100)
    assert maps.s[0] == pytest.approx(1.0, rel=1e-9) and maps.flags[0] == 0  # planted S
    assert np.all(np.isnan(maps.s[1:])) and np.all(maps.flags[1:] & FLAG_LOW_COUNTS)


def test_s_parameter_bad_inputs():
    good = np.ones((2, CENTRES.size))
    with pytest.raises(EngineInputError, match="does not cover"):
        s_parameter(good[:, 60:], CENTRES[60:])  # 95-110 keV misses the low side
    with pytest.raises(EngineInputError, match="negative"):
        s_parameter(good - 2, CENTRES)
    with pytest.raises(EngineInputError, match="energy bins"):
        s_parameter(good[:, :-1], CENTRES)
    with pytest.raises(EngineInputError, match="increasing"):
        s_parameter(good, CENTRES[::-1])


# --- Compton profile ----------------------------------------------------------------------------


def test_profile_recovers_planted_j():
    profile = profile_for_s_parameter(0.9)
    counts = expected_counts(
        EDGES, profile, total_counts=1e6, resolution_fwhm_kev=0.0, klein_nishina=True
    )
    result = compton_profile(counts, CENTRES, klein_nishina=True)
    pz_fine = np.linspace(-5, 5, 20001)
    area = np.trapezoid(profile(pz_fine), pz_fine)
    inner = np.abs(result.pz_au) < 4
    np.testing.assert_allclose(result.j[inner], profile(result.pz_au[inner]) / area, rtol=0.01)
    assert np.all(np.abs(result.pz_au) <= 8.0)


def test_forward_model_conserves_counts():
    profile = profile_for_s_parameter(1.2)
    edges = np.linspace(40.0, 114.0, 741)
    plain = spectrum_from_profile(edges, profile, resolution_fwhm_kev=0.0, klein_nishina=False)
    blurred = spectrum_from_profile(edges, profile, resolution_fwhm_kev=0.8, klein_nishina=False)
    assert plain.sum() == pytest.approx(1.0, abs=1e-4)  # unit-area J, all of it in range
    assert blurred.sum() == pytest.approx(plain.sum(), rel=1e-5)


# --- calibration ----------------------------------------------------------------------------------


def test_default_calibration_reproduces_table2():
    for _state, _region, s, li in PAPER_TABLE2:
        assert float(DEFAULT_CALIBRATION.stoichiometry(s)) == pytest.approx(li, abs=0.01)
    fitted = fit_calibration([r[2] for r in PAPER_TABLE2], [r[3] for r in PAPER_TABLE2])
    assert fitted.intercept == pytest.approx(0.650, abs=5e-4)
    assert fitted.slope == pytest.approx(2.309, abs=5e-4)
    assert 0 < fitted.slope_sigma < 0.05


def test_calibration_round_trip_and_errors():
    cal = fit_calibration([1.0, 2.0, 3.0], [0.0, 0.5, 1.0])
    assert (cal.intercept, cal.slope) == pytest.approx((1.0, 2.0))
    assert float(cal.stoichiometry(cal.s_parameter(0.37))) == pytest.approx(0.37)
    assert parse_calibration("0.5, 2").slope == 2.0
    with pytest.raises(EngineInputError, match="slope is zero"):
        LinearCalibration(1.0, 0.0)
    with pytest.raises(EngineInputError, match="slope is zero"):
        fit_calibration([1.0, 1.0, 1.0], [0.0, 0.5, 1.0])
    with pytest.raises(EngineInputError, match="same stoichiometry"):
        fit_calibration([1.0, 2.0], [0.5, 0.5])
    with pytest.raises(EngineInputError, match="A,B"):
        parse_calibration("1.0")


# --- xraylib theory --------------------------------------------------------------------------------


def test_free_atom_profiles_match_xraylib_totals():
    import xraylib

    pz = np.array([0.0, 0.5, 1.0, 3.0])
    for z in (3, 8, 28):
        from analysis_engine.compton.theory import atomic_profile

        valence, core = atomic_profile(z, pz)
        expected = [xraylib.ComptonProfile(z, float(p)) for p in pz]
        np.testing.assert_allclose(valence + core, expected, rtol=0.01)
    grid = np.linspace(-40, 40, 8001)
    v, c = compound_profile(1.0, grid)
    electrons = 3 + 0.8 * 28 + 0.1 * 25 + 0.1 * 27 + 2 * 8
    assert np.trapezoid(v + c, grid) == pytest.approx(electrons, rel=0.005)


def test_theoretical_curve_is_monotonic_and_blurring_lowers_s():
    curve = theoretical_s_curve([0.0, 0.5, 1.0])
    assert np.all(np.diff(curve.s_true) > 0)
    assert np.all(np.diff(curve.s_measured) > 0)
    assert np.all(curve.s_measured < curve.s_true)
    # free atoms: adding Li's 2s electron raises S by a few % per unit (1 - x)
    assert 0.02 < curve.calibration_true.slope < 0.2
    assert 0.9 < curve.s_true[0] < 1.1
