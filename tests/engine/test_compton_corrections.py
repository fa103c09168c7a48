"""Corrections for real XCS-I spectra, on spectra built WITHOUT the engine.

The test writes its own forward model: a two-Gaussian Compton profile J(p_z) (closed-form window
integrals through erf), Eq. 6 written out here, the detector blur as an FFT convolution on a
0.004 keV grid, a linear background of 3 % of the peak height and a per-pixel resolution spread.
Pinhole angles come from the formula in the issue, evaluated here with numpy.
"""

import json

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.special import erf

from analysis_engine.compton.corrected import (
    FLAG_BAD_PIXEL,
    blurred_window_weights,
    corrected_s_parameter,
    find_bad_pixels,
)
from analysis_engine.compton.geometry import (
    PAPER_GEOMETRY,
    geometry_from_mapping,
    pixel_angles_deg,
)
from analysis_engine.errors import EngineInputError

MC2 = 510.99895
ALPHA_INV = 137.035999
E1 = 115.0
SIG_V, SIG_C, W_V = 0.6, 2.5, 0.55
FINE = np.arange(60.0, 114.0, 0.004)
FINE_EDGES = np.append(FINE - 0.002, FINE[-1] + 0.002)


def pz_eq6(e2, theta_deg):
    """Paper Eq. 6, written independently of analysis_engine.compton.kinematics."""
    c = np.cos(np.deg2rad(theta_deg))
    num = e2 - E1 + E1 * e2 * (1 - c) / MC2
    return num / np.sqrt(E1**2 + e2**2 - 2 * E1 * e2 * c) * ALPHA_INV


def j_profile(p):
    g = lambda s: np.exp(-0.5 * (p / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
    return W_V * g(SIG_V) + (1 - W_V) * g(SIG_C)


def analytic_s():
    """S of the unblurred profile: closed-form window integrals."""

    def inside(s, lo, hi):
        return erf(hi / (s * np.sqrt(2))) - erf(lo / (s * np.sqrt(2)))

    low = W_V * inside(SIG_V, 0, 1) + (1 - W_V) * inside(SIG_C, 0, 1)
    high = W_V * inside(SIG_V, 1, 5) + (1 - W_V) * inside(SIG_C, 1, 5)
    return low / high


def blurred_density(theta_deg, fwhm_kev):
    """Counts per keV on FINE: J(p(E)) dp/dE convolved with the detector Gaussian."""
    p = pz_eq6(FINE, theta_deg)
    density = j_profile(p) * np.gradient(p, FINE)
    if fwhm_kev <= 0:
        return density
    sigma = fwhm_kev / 2.354820045
    k = np.arange(-6 * sigma, 6 * sigma + 1e-9, 0.004)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    return fftconvolve(density, kernel / kernel.sum(), mode="same")


def bin_counts(density, edges):
    cumulative = np.concatenate([[0.0], np.cumsum(density) * 0.004])
    return np.diff(np.interp(edges, FINE_EDGES, cumulative))


def window_s(density, theta_deg):
    """S of a density on FINE, windows found by inverting Eq. 6 numerically (np.interp)."""
    p = pz_eq6(FINE, theta_deg)
    e = np.interp([-5, -1, 1, 5], p, FINE)
    cumulative = np.concatenate([[0.0], np.cumsum(density) * 0.004])
    c = np.interp(e, FINE_EDGES, cumulative)
    return (c[2] - c[1]) / (c[1] - c[0] + c[3] - c[2])


@pytest.fixture(scope="module")
def pinhole_spectra():
    """4 x 80 pixels through the paper's pinhole, 3 % linear background, FWHM 0.65-0.95 keV."""
    rng = np.random.default_rng(5)
    rows, cols = 4, 80
    j = np.arange(cols)
    theta = 90.0 + np.rad2deg(np.arctan((j - (cols - 1) / 2) * 0.25 / 150.0))
    fwhm = rng.uniform(0.65, 0.95, size=(rows, cols))
    centres = np.arange(70.0, 114.0, 0.05) + 0.025
    edges = np.concatenate([centres - 0.025, [centres[-1] + 0.025]])
    counts = 4.0e5
    cube = np.zeros((rows, cols, centres.size))
    truth_clean = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            dens = blurred_density(theta[c], fwhm[r, c])
            clean = bin_counts(dens, edges) * counts
            peak = clean.max() / 0.05  # counts per keV at the peak
            bg = 0.03 * peak * (1.0 - 0.01 * (centres - 93.9)) * 0.05
            cube[r, c] = rng.poisson(clean + bg)
            truth_clean[r, c] = window_s(dens, theta[c])
    return {
        "cube": cube,
        "centres": centres,
        "theta": theta,
        "fwhm": fwhm,
        "reference": 1.0,
        "truth_clean": truth_clean,
    }


def test_pixel_angles_follow_the_pinhole_formula():
    angles = pixel_angles_deg(PAPER_GEOMETRY, (80, 80))
    j = np.arange(80)
    expected = 90 + np.degrees(np.arctan((j - 39.5) * 0.25 / 150))
    np.testing.assert_allclose(angles[7], expected, atol=1e-12)
    assert np.ptp(angles[:, 5]) == 0  # constant along rows for beam_axis="col"
    assert angles.max() - 90 == pytest.approx(3.77, abs=0.01)  # SCIENCE: about +-3.8 deg
    geo = geometry_from_mapping({**PAPER_GEOMETRY.as_dict(), "beam_axis": "row"})
    np.testing.assert_allclose(pixel_angles_deg(geo, (80, 80))[:, 3], expected, atol=1e-12)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sample_to_pinhole_mm": -160.0}, "sample_to_pinhole_mm"),
        ({"pinhole_to_detector_mm": 0}, "pinhole_to_detector_mm"),
        ({"beam_axis": "diagonal"}, "beam_axis"),
        ({"scattering_angle_deg": 190.0}, "scattering_angle_deg"),
        ({"pixel_pitch_mm": "wide"}, "pixel_pitch_mm"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_geometry_names_the_field(change, field):
    with pytest.raises(EngineInputError, match=field):
        geometry_from_mapping({**PAPER_GEOMETRY.as_dict(), **change})


def test_blurred_weights_match_a_brute_force_bin_average():
    edges = np.array([92.0, 92.05, 92.1, 93.0, 94.0])
    s = np.array([0.0, 0.2])
    w = blurred_window_weights(edges, [(92.03, 93.4)], s)
    # sharp: fraction of each bin inside
    np.testing.assert_allclose(w[0], [0.4, 1.0, 1.0, 0.4], atol=1e-9)
    # blurred: average over the bin of Phi((b-e)/s) - Phi((a-e)/s), by a fine midpoint rule
    from scipy.stats import norm

    for k in range(4):
        e = np.linspace(edges[k], edges[k + 1], 20001)
        e = 0.5 * (e[1:] + e[:-1])
        brute = np.mean(norm.cdf((93.4 - e) / 0.2) - norm.cdf((92.03 - e) / 0.2))
        assert w[1, k] == pytest.approx(brute, abs=1e-7)


def test_pinhole_background_resolution_give_a_flat_s_map(pinhole_spectra):
    d = pinhole_spectra
    maps = corrected_s_parameter(
        d["cube"],
        d["centres"],
        angle_deg=np.broadcast_to(d["theta"], d["cube"].shape[:2]),
        background="fit",
        resolution_fwhm_kev=d["fwhm"],
        reference_fwhm_kev=d["reference"],
        tail_profile=j_profile,
    )
    s = maps.s
    assert np.all(np.isfinite(s))
    # expected: S of the background-free spectrum at the reference resolution, centre angle
    expected = window_s(blurred_density(90.0, d["reference"]), 90.0)
    assert np.mean(s) == pytest.approx(expected, rel=0.03)
    # flat within counting noise: chi^2 per pixel about 1 (angle scale changes S by < 0.5 %)
    chi2 = np.mean(((s - np.mean(s)) / maps.s_sigma) ** 2)
    assert chi2 < 1.6
    # the blur moves S by much more than that: the analytic unblurred S is far away
    assert abs(expected / analytic_s() - 1) > 0.05


def test_without_corrections_the_artefacts_are_large(pinhole_spectra):
    d = pinhole_spectra
    one_angle = corrected_s_parameter(d["cube"], d["centres"], angle_deg=90.0, background="none")
    edge, centre = np.mean(one_angle.s[:, :3]), np.mean(one_angle.s[:, 38:42])
    assert edge / centre < 0.8  # an apparent lateral "Li gradient" from the geometry alone
    no_bg = corrected_s_parameter(
        d["cube"],
        d["centres"],
        angle_deg=np.broadcast_to(d["theta"], d["cube"].shape[:2]),
        background="none",
    )
    with_bg = corrected_s_parameter(
        d["cube"],
        d["centres"],
        angle_deg=np.broadcast_to(d["theta"], d["cube"].shape[:2]),
        background="fit",
        tail_profile=j_profile,
    )
    assert np.mean(no_bg.s) / np.mean(with_bg.s) < 0.9  # the 3 % background lowers S
    # the uncorrected-resolution S scatters with the FWHM; corrected S does not
    spread_plain = np.std(with_bg.s / with_bg.s_sigma)
    assert spread_plain > 2.0


def test_measured_background_spectrum(pinhole_spectra):
    d = pinhole_spectra
    centres = d["centres"]
    background = 100.0 * (1.0 - 0.01 * (centres - 93.9))
    clean_only = corrected_s_parameter(
        d["cube"][:1, :5], centres, angle_deg=d["theta"][None, :5], background=background
    )
    fit = corrected_s_parameter(
        d["cube"][:1, :5],
        centres,
        angle_deg=d["theta"][None, :5],
        background="fit",
        tail_profile=j_profile,
    )
    # same shape as the planted background: both estimates agree within counting noise
    assert np.all(np.abs(clean_only.s - fit.s) < 3 * fit.s_sigma)
    with pytest.raises(EngineInputError, match="measured background"):
        corrected_s_parameter(d["cube"][:1, :5], centres, background=np.ones(3))


def test_background_fit_does_not_eat_core_tails():
    """NMC811 free-atom profile (xraylib), noise-free: the side-band fit removes < 0.5 % of S."""
    from analysis_engine.compton.forward import spectrum_from_profile
    from analysis_engine.compton.theory import compound_profile

    pz = np.linspace(-40, 40, 4001)
    valence, core = compound_profile(0.5, pz)
    centres = np.arange(70.0, 114.0, 0.05) + 0.025
    edges = np.concatenate([centres - 0.025, [centres[-1] + 0.025]])
    spectrum = spectrum_from_profile(edges, (pz, valence + core), resolution_fwhm_kev=0.8)
    none = corrected_s_parameter(spectrum * 1e6, centres, background="none", min_counts=0)
    fit = corrected_s_parameter(spectrum * 1e6, centres, background="fit", min_counts=0)
    assert float(fit.s) == pytest.approx(float(none.s), rel=0.005)
    # without the tail template the line fit takes the core tails for background
    naive = corrected_s_parameter(
        spectrum * 1e6, centres, background="fit", tail_profile=None, min_counts=0
    )
    assert float(naive.s) / float(none.s) - 1 > 0.01


def test_bad_pixels_are_found_and_masked():
    counts = np.full((10, 10), 1000.0)
    counts[2, 3] = 0
    counts[7, 7] = 20_000
    counts[:, 8:] = 300.0  # a real intensity edge is not "noisy"
    bad = find_bad_pixels(counts)
    assert set(zip(*np.nonzero(bad), strict=True)) == {(2, 3), (7, 7)}
    spectra = np.ones((2, 2, 880))
    flags = corrected_s_parameter(
        spectra,
        np.arange(70.0, 114.0, 0.05),
        bad_pixels=np.array([[True, False], [False, False]]),
        min_counts=0,
    ).flags
    assert flags[0, 0] & FLAG_BAD_PIXEL and not flags[1, 1] & FLAG_BAD_PIXEL


def test_angle_outside_recorded_range_is_refused():
    with pytest.raises(EngineInputError, match="does not cover"):
        corrected_s_parameter(np.ones((2, 800)), np.arange(70.0, 110.0, 0.05), angle_deg=40.0)


def test_geometry_json_roundtrip(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(PAPER_GEOMETRY.as_dict()))
    assert geometry_from_mapping(json.loads(path.read_text())) == PAPER_GEOMETRY


def _write(path, cube, centres, instrument=None):
    """The events output layout, written with h5py here (independent of io.spectra)."""
    import h5py

    with h5py.File(path, "w") as f:
        f["energy_bins"] = centres
        f["pixel_histograms"] = np.asarray(cube).astype(np.uint32)
        f["summed_histogram"] = np.asarray(cube).sum(axis=(0, 1)).astype(np.uint64)
        if instrument:
            g = f.create_group("instrument")
            for k, v in instrument.items():
                g.attrs[k] = v


def test_compton_geometry_command_flat_map(tmp_path, pinhole_spectra, capsys):
    from analysis_engine.cli import main

    d = pinhole_spectra
    _write(tmp_path / "sp.h5", d["cube"], d["centres"])
    (tmp_path / "g.json").write_text(json.dumps(PAPER_GEOMETRY.as_dict()))
    np.save(tmp_path / "fwhm.npy", d["fwhm"])
    out = tmp_path / "c.h5"
    argv = ["compton", str(tmp_path / "sp.h5"), "-o", str(out), "--geometry"]
    argv += [str(tmp_path / "g.json"), "--resolution-fwhm", str(tmp_path / "fwhm.npy")]
    argv += ["--reference-fwhm-kev", "1.0", "--no-fit-peaks", "--tail-profile", "none"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    import h5py

    with h5py.File(out) as f:
        s, sigma = f["s_parameter"][()], f["s_parameter_sigma"][()]
        angle = f["angle_deg"][()]
        line = f["line_energy_kev"][()]
        assert f["background_per_kev"].shape == s.shape
    np.testing.assert_allclose(angle[0], d["theta"], atol=1e-4)
    # Compton line at the edge pixels: the closed form E1 / (1 + E1/mc2 (1 - cos))
    edge = E1 / (1 + E1 / MC2 * (1 - np.cos(np.deg2rad(d["theta"][0]))))
    assert line[0, 0] == pytest.approx(edge, abs=1e-3)
    expected = window_s(blurred_density(90.0, 1.0), 90.0)
    assert np.nanmean(s) == pytest.approx(expected, rel=0.03)
    assert np.nanmean(((s - np.nanmean(s)) / sigma) ** 2) < 1.6
    assert summary["geometry"]["source"].endswith("g.json")
    assert set(summary["uncertainty_budget"]) == {
        "counting",
        "calibration",
        "energy_scale",
        "resolution",
    }
    assert summary["calibration"]["is_default"] is True
    # the geometry also comes from the file's /instrument group
    _write(tmp_path / "sp2.h5", d["cube"][:1], d["centres"], PAPER_GEOMETRY.as_dict())
    assert main(["compton", str(tmp_path / "sp2.h5"), "-o", str(tmp_path / "d.h5")]) == 0
    summary2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary2["geometry"]["source"] == "/instrument of the spectra file"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--geometry", {"beam_axis": "z"}, "beam_axis"),
        ("--geometry", {"sample_to_pinhole_mm": -1}, "sample_to_pinhole_mm"),
        ("--geometry", {"scattering_angle_deg": 30.0}, "scattering_angle_deg"),
        ("--porosity", np.zeros((3, 3)), "porosity map has shape"),
        ("--resolution-fwhm", np.zeros((3, 3)), "resolution"),
    ],
)
def test_compton_bad_corrections_exit_2(tmp_path, pinhole_spectra, capsys, option, value, message):
    from analysis_engine.cli import main

    d = pinhole_spectra
    _write(tmp_path / "sp.h5", d["cube"][:1, :10], d["centres"])
    if option == "--geometry":
        arg = tmp_path / "g.json"
        arg.write_text(json.dumps({**PAPER_GEOMETRY.as_dict(), **value}))
    else:
        arg = tmp_path / "m.npy"
        np.save(arg, value)
    out = tmp_path / "c.h5"
    assert main(["compton", str(tmp_path / "sp.h5"), "-o", str(out), option, str(arg)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_calibration_fit_matches_weighted_least_squares():
    from analysis_engine.compton.calibration import fit_calibration

    li = np.array([0.0, 0.3, 0.55, 0.9])
    s = np.array([0.66, 1.34, 1.93, 2.73])
    sig = np.array([0.01, 0.02, 0.015, 0.02])
    cal = fit_calibration(s, li, s_sigma=sig)
    slope, intercept = np.polyfit(li, s, 1, w=1 / sig)
    assert (cal.intercept, cal.slope) == pytest.approx((intercept, slope), rel=1e-10)
    # covariance: (X^T W X)^-1 written out for a line, times the reduced chi-square (> 1 here)
    w = 1 / sig**2
    sw, sx, sxx = w.sum(), (w * li).sum(), (w * li * li).sum()
    det = sw * sxx - sx**2
    chi2 = np.sum(w * (s - intercept - slope * li) ** 2) / 2
    scale = max(chi2, 1.0)
    assert cal.intercept_sigma**2 == pytest.approx(sxx / det * scale, rel=1e-9)
    assert cal.slope_sigma**2 == pytest.approx(sw / det * scale, rel=1e-9)
    assert cal.covariance_ab == pytest.approx(-sx / det * scale, rel=1e-9)
    with pytest.raises(EngineInputError, match="same stoichiometry"):
        fit_calibration([1.0, 2.0], [0.5, 0.5])
    with pytest.raises(EngineInputError, match="at least 2"):
        fit_calibration([1.0], [0.5])


def test_compton_calibrate_command(tmp_path, pinhole_spectra, capsys):
    from analysis_engine.cli import main
    from analysis_engine.compton.commands import run_compton

    d = pinhole_spectra
    base = d["cube"][:1, 30:50]
    # a valence-only spectrum (narrow Gaussian in p_z) added in three doses raises S stepwise
    valence = np.exp(-0.5 * (pz_eq6(FINE, 90.0) / SIG_V) ** 2) * np.gradient(
        pz_eq6(FINE, 90.0), FINE
    )
    extra = bin_counts(valence, np.append(d["centres"] - 0.025, d["centres"][-1] + 0.025))
    extra *= 1e5 / extra.sum()
    standards = []
    for k in range(3):
        _write(tmp_path / f"st{k}.h5", base + np.round(k * extra), d["centres"])
        standards.append({"spectra": f"st{k}.h5", "one_minus_x": 0.2 * k})
    (tmp_path / "std.json").write_text(json.dumps(standards[:1]))
    assert main(["compton-calibrate", str(tmp_path / "std.json"), "-o", str(tmp_path / "x")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    (tmp_path / "std.json").write_text(json.dumps(standards))
    out = tmp_path / "cal.json"
    assert main(["compton-calibrate", str(tmp_path / "std.json"), "-o", str(out)]) == 0
    capsys.readouterr()
    result = json.loads(out.read_text())
    points = result["points"]
    # the same S definition as the maps: run_compton's s_total of each standard
    for k, point in enumerate(points):
        summary = run_compton(tmp_path / f"st{k}.h5", tmp_path / f"m{k}.h5", fit_peaks=False)
        assert point["s"] == pytest.approx(summary["s_total"], rel=1e-12)
    s = np.array([p["s"] for p in points])
    sig = np.array([p["s_sigma"] for p in points])
    slope, intercept = np.polyfit([0.0, 0.2, 0.4], s, 1, w=1 / sig)
    cal = result["calibration"]
    assert (cal["intercept"], cal["slope"]) == pytest.approx((intercept, slope), rel=1e-9)
    assert cal["slope"] > 0 and cal["slope_sigma"] > 0
    # the file is accepted back by compton --calibration
    summary = run_compton(tmp_path / "st1.h5", tmp_path / "n.h5", fit_peaks=False, calibration=out)
    assert summary["li_total"] == pytest.approx((summary["s_total"] - intercept) / slope)
    assert summary["uncertainty_budget"]["calibration"] > 0


def _two_gaussian_s(w_v):
    """Closed-form S (windows 0-1 and 1-5 a.u.) of w_v G(SIG_V) + (1 - w_v) G(SIG_C)."""

    def part(s, lo, hi):
        return erf(hi / (s * np.sqrt(2))) - erf(lo / (s * np.sqrt(2)))

    low = w_v * part(SIG_V, 0, 1) + (1 - w_v) * part(SIG_C, 0, 1)
    high = w_v * part(SIG_V, 1, 5) + (1 - w_v) * part(SIG_C, 1, 5)
    return low / high


def test_cathode_mask_restricts_s_li_spectrum_and_profile_to_the_footprint(tmp_path):
    """Pixels outside a planted footprint carry another profile (lower S) and 3x the counts:
    with the mask, S, Li, the summed spectrum and J(p_z) are those of the inside profile."""
    import h5py

    from analysis_engine.compton.commands import run_compton

    w_in, w_out = 0.55, 0.15
    centres = np.arange(70.0, 114.0, 0.05) + 0.025
    edges = np.concatenate([centres - 0.025, [centres[-1] + 0.025]])
    p = pz_eq6(FINE, 90.0)
    dpde = np.gradient(p, FINE)

    def spectrum(w_v, counts):
        g = lambda s: np.exp(-0.5 * (p / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
        return bin_counts((w_v * g(SIG_V) + (1 - w_v) * g(SIG_C)) * dpde, edges) * counts

    yy, xx = np.mgrid[0:9, 0:9]
    footprint = np.hypot(yy - 4, xx - 4) <= 2.6  # 21 pixels
    cube = (
        np.where(
            footprint[..., None],
            spectrum(w_in, 2.0e6)[None, None],
            spectrum(w_out, 6.0e6)[None, None],
        )
        .round()
        .astype(np.uint32)
    )
    src = tmp_path / "spectra.h5"
    with h5py.File(src, "w") as f:
        f["energy_bins"] = centres
        f["pixel_histograms"] = cube
    corr = tmp_path / "correlation.h5"
    with h5py.File(corr, "w") as f:  # the layout correlate writes
        f["region_1/cathode_mask"] = footprint.astype(np.uint8)

    common = {"background": "none", "fit_peaks": False, "min_counts": 10.0}
    masked = run_compton(src, tmp_path / "m.h5", mask=f"{corr}:/region_1/cathode_mask", **common)
    whole = run_compton(src, tmp_path / "w.h5", **common)

    s_in, s_out = _two_gaussian_s(w_in), _two_gaussian_s(w_out)
    assert masked["s_total"] == pytest.approx(s_in, rel=1e-4)
    assert masked["li_total"] == pytest.approx((s_in - 0.650) / 2.309, abs=2e-3)
    assert masked["mask"] == {"given": True, "pixels_inside": 21}
    assert masked["pixels"] == 21
    # without the mask the outside profile dominates: S lies between the two, far from s_in
    assert s_out < whole["s_total"] < s_in - 0.3 * (s_in - s_out)
    assert whole["mask"]["given"] is False

    with h5py.File(tmp_path / "m.h5") as f:
        for name in ("s_parameter", "li_stoichiometry", "compton_counts"):
            m = f[name][()]
            assert np.all(np.isnan(m[~footprint])), name
            assert np.all(np.isfinite(m[footprint])), name
        np.testing.assert_allclose(f["s_parameter"][()][footprint], s_in, rtol=2e-3)
        np.testing.assert_allclose(f["summed_spectrum"][()], cube[footprint].sum(axis=0))
        pz, j = f["profile/pz_au"][()], f["profile/j"][()]
    # J(p_z) of the footprint, area 1 over |p_z| < 5 a.u.: the inside profile
    g = lambda s: np.exp(-0.5 * (pz / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
    planted = w_in * g(SIG_V) + (1 - w_in) * g(SIG_C)
    window = np.abs(pz) < 5
    planted /= np.trapezoid(np.where(window, planted, 0.0), pz)
    core = np.abs(pz) < 3
    np.testing.assert_allclose(j[core], planted[core], atol=0.01 * planted.max())


def test_refined_energy_scale_removes_a_planted_per_pixel_offset(tmp_path):
    """Each pixel's recorded energy axis is off by a planted 0.1-0.4 keV (either sign), spectra
    seen through the paper's pinhole at 0.8 keV FWHM. Without refinement the windows sit off the
    peak and S is biased; refined from the fitted peak centres, S is back to the window integral
    of the unshifted spectrum (computed here) within counting noise."""
    from analysis_engine.compton.commands import run_compton

    rng = np.random.default_rng(11)
    rows, cols = 2, 40
    theta = 90.0 + np.rad2deg(np.arctan((np.arange(cols) - (cols - 1) / 2) * 0.25 / 150.0))
    offsets = rng.uniform(0.1, 0.4, size=(rows, cols)) * rng.choice([-1, 1], size=(rows, cols))
    centres = np.arange(70.0, 114.0, 0.05) + 0.025
    edges = np.concatenate([centres - 0.025, [centres[-1] + 0.025]])
    cube = np.zeros((rows, cols, centres.size))
    truth = np.zeros((rows, cols))
    for c in range(cols):
        dens = blurred_density(theta[c], 0.8)
        truth[:, c] = window_s(dens, theta[c])
        for r in range(rows):
            shifted = np.interp(FINE - offsets[r, c], FINE, dens, left=0.0, right=0.0)
            cube[r, c] = rng.poisson(np.clip(bin_counts(shifted, edges), 0, None) * 4.0e5)
    src = tmp_path / "shifted.h5"
    _write(src, cube, centres, instrument=PAPER_GEOMETRY.as_dict())
    common = {"background": "none", "min_counts": 10.0}
    plain = run_compton(src, tmp_path / "plain.h5", **common)
    refined = run_compton(src, tmp_path / "refined.h5", refine_energy_scale=True, **common)

    import h5py

    with h5py.File(tmp_path / "plain.h5") as f:
        s_plain = f["s_parameter"][()]
    with h5py.File(tmp_path / "refined.h5") as f:
        s_refined, sigma = f["s_parameter"][()], f["s_parameter_sigma"][()]
        found = f["energy_offset_kev"][()]
    # the fitted centres find the planted offsets (counting noise of a centre: ~0.01 keV)
    assert np.sqrt(np.mean((found - offsets) ** 2)) < 0.02
    pull_plain = (s_plain - truth) / sigma
    pull = (s_refined - truth) / sigma
    assert np.sqrt(np.mean(pull_plain**2)) > 5  # the offsets bias S far beyond counting noise
    assert np.sqrt(np.mean(pull**2)) < 1.5
    assert abs(np.mean(s_refined / truth) - 1) < 2e-3
    assert refined["energy_scale"]["refined"] is True
    assert refined["energy_scale"]["pixels_median_offset"] == 0
    assert plain["energy_scale"] == {"refined": False}
    with pytest.raises(EngineInputError, match="refine_energy_scale"):
        run_compton(src, tmp_path / "x.h5", refine_energy_scale=True, fit_peaks=False)


def test_porosity_correction_takes_the_cells_composition(tmp_path, pinhole_spectra):
    """``composition`` sets the non-NMC electron share f of the electrolyte/binder correction.
    Expected f written out here from the documented phases (weight ratios, densities 4.75 /
    1.9 / 1.78 / 1.26 g/cm3, electrons per gram from Z and atomic masses); the summary's
    ``delta_li`` is the change of li_total that the correction makes."""
    import h5py

    from analysis_engine.compton.commands import run_compton

    d = pinhole_spectra
    _write(tmp_path / "sp.h5", d["cube"][:1, :20], d["centres"])
    phi = np.full((1, 20), 0.3)

    def e_per_g(atoms):  # {Z: (count, atomic mass)}
        return sum(z * n for z, (n, _) in atoms.items()) / sum(n * m for n, m in atoms.values())

    nmc = e_per_g({3: (0.5, 6.94), 28: (0.8, 58.693), 25: (0.1, 54.938), 27: (0.1, 58.933),
                   8: (2.0, 15.999)})  # fmt: skip
    carbon = e_per_g({6: (1.0, 12.011)})
    pvdf = e_per_g({6: (2.0, 12.011), 1: (2.0, 1.008), 9: (2.0, 18.998)})
    el = e_per_g({3: (1.0, 6.94), 15: (1.0, 30.974), 9: (6.0, 18.998), 6: (40.0, 12.011),
                  1: (67.0, 1.008), 8: (31.8, 15.999)})  # fmt: skip
    fractions = {}
    for ratios in ((90, 5, 5), (70, 15, 15)):
        w = np.asarray(ratios) / sum(ratios)
        volume = w[0] / 4.75 + w[1] / 1.9 + w[2] / 1.78
        nmc_e = w[0] * nmc / volume
        other_e = (w[1] * carbon + w[2] * pvdf) / volume
        expected = (0.7 * other_e + 0.3 * 1.26 * el) / (0.7 * (nmc_e + other_e) + 0.3 * 1.26 * el)
        out = tmp_path / f"c{ratios[0]}.h5"
        summary = run_compton(
            tmp_path / "sp.h5",
            out,
            geometry=PAPER_GEOMETRY.as_dict(),
            fit_peaks=False,
            porosity=phi,
            composition=ratios,
        )
        with h5py.File(out, "r") as f:
            f_map = f["non_cathode_fraction"][()]
        assert np.nanmean(f_map) == pytest.approx(expected, rel=1e-3)
        matrix = summary["matrix_correction"]
        assert matrix["composition_nmc_carbon_binder"] == pytest.approx(list(w))
        assert matrix["delta_li"] == pytest.approx(
            summary["li_total"] - matrix["li_total_measured"], abs=1e-12
        )
        fractions[ratios] = expected
    assert fractions[(70, 15, 15)] > fractions[(90, 5, 5)] + 0.05  # the test can tell them apart
    # without a porosity map: no correction, and a composition alone is refused
    plain = run_compton(tmp_path / "sp.h5", tmp_path / "p.h5", fit_peaks=False)
    assert plain["matrix_correction"] is None
    with pytest.raises(EngineInputError, match="porosity map"):
        run_compton(tmp_path / "sp.h5", tmp_path / "q.h5", fit_peaks=False, composition=(9, 1, 1))
    with pytest.raises(EngineInputError, match="three weight ratios"):
        run_compton(
            tmp_path / "sp.h5", tmp_path / "q.h5", fit_peaks=False, porosity=phi, composition=(1, 2)
        )
    assert not (tmp_path / "q.h5").exists()
