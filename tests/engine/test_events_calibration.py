"""Per-pixel calibration: planted gains and offsets are recovered from synthetic line spectra."""

from __future__ import annotations

import numpy as np

from analysis_engine.events.calibration import fit_calibration, refine_gain_on_line
from analysis_engine.events.commands import run_events_calibrate
from analysis_engine.io.hexitec import Calibration, read_calibration, write_hexitec_events
from analysis_engine.synthetic.hexitec import generate_events, random_calibration

SIGMA_KEV = 0.8 / 2.3548
ADU = np.arange(0.5, 4096.0, 1.0)  # 1-ADU bin centres


def _line_histograms(gain, offset, lines, counts, rng, *, sigma_kev=SIGMA_KEV, background=2.0):
    """Expected ADU spectra of Gaussian lines plus flat background, Poisson-drawn."""
    energy = gain[..., None] * ADU + offset[..., None]  # keV of each ADU bin centre
    mean = np.full(energy.shape, background)
    for line, n in zip(lines, counts, strict=True):
        sig_adu = sigma_kev / gain[..., None]
        mean += (
            n * np.exp(-0.5 * ((energy - line) / sigma_kev) ** 2) / (np.sqrt(2 * np.pi) * sig_adu)
        )
    return rng.poisson(mean)


def _nominal(gain, offset, rng):
    """A previous, approximate calibration: 1 % in gain, 0.3 keV in offset."""
    return {
        "nominal_gain_kev_per_adu": gain * (1 + 0.01 * rng.standard_normal(gain.shape)),
        "nominal_offset_kev": offset + 0.3 * rng.standard_normal(gain.shape),
    }


def test_planted_gain_and_offset_recovered_to_20_ev_at_94_kev():
    rng = np.random.default_rng(0)
    gain, offset = random_calibration(10, 10, seed=3)
    lines = (59.5409, 26.3446, 115.0)
    hist = _line_histograms(gain, offset, lines, (40_000, 8_000, 20_000), rng)
    hist[2, 3] = rng.poisson(0.05, hist.shape[2])  # dead pixel
    broad = _line_histograms(gain[:1, :1], offset[:1, :1], lines, (40_000, 8_000, 20_000), rng,
                             sigma_kev=4 * SIGMA_KEV)  # fmt: skip
    hist[7, 7] = broad[0, 0]  # noisy pixel: resolution four times worse
    fit = fit_calibration(ADU, hist, lines_kev=lines, **_nominal(gain, offset, rng))
    assert fit.bad_pixels[2, 3] and fit.bad_pixels[7, 7]
    assert fit.bad_pixels.sum() == 2
    good = ~fit.bad_pixels
    adu94 = (94.0 - offset) / gain
    error_kev = fit.gain_kev_per_adu * adu94 + fit.offset_kev - 94.0
    assert np.max(np.abs(error_kev[good])) < 0.02
    assert np.max(np.abs(fit.offset_kev[good] - offset[good])) < 0.1
    np.testing.assert_allclose(fit.fwhm_kev[good], 0.8, rtol=0.05)
    assert fit.summary["pixels_masked"] == 2 and fit.summary["pixels_dead"] == 1


def test_am241_lines_alone_extrapolate_to_94_kev_within_20_ev():
    rng = np.random.default_rng(1)
    gain, offset = random_calibration(8, 8, seed=5)
    hist = _line_histograms(gain, offset, (59.5409, 26.3446), (120_000, 60_000), rng)
    fit = fit_calibration(ADU, hist, **_nominal(gain, offset, rng))
    adu94 = (94.0 - offset) / gain
    error_kev = fit.gain_kev_per_adu * adu94 + fit.offset_kev - 94.0
    assert not fit.bad_pixels.any()
    assert np.max(np.abs(error_kev)) < 0.02


def test_elastic_line_refinement_corrects_gain():
    rng = np.random.default_rng(2)
    gain, offset = random_calibration(8, 8, seed=7)
    hist = _line_histograms(gain, offset, (115.0,), (30_000,), rng)
    wrong_gain = gain * (1 + 0.004 * rng.standard_normal(gain.shape))  # about 0.4 keV at 94 keV
    refined, fit = refine_gain_on_line(
        ADU, hist, gain_kev_per_adu=wrong_gain, offset_kev=offset, line_kev=115.0
    )
    assert fit.ok.all()
    adu94 = (94.0 - offset) / gain
    before = np.abs(wrong_gain * adu94 + offset - 94.0)
    after = np.abs(refined * adu94 + offset - 94.0)
    assert before.max() > 0.2
    assert after.max() < 0.02


def test_events_calibrate_command_on_an_adu_event_list(tmp_path):
    rows = cols = 6
    gain, offset = random_calibration(rows, cols, seed=11)
    e = np.arange(0.025, 130.0, 0.05)
    spectrum = np.zeros_like(e)
    planted = []  # the grid puts each line at the centre of the 50 eV bin holding it
    for line, weight in ((59.5409, 0.6), (26.3446, 0.4)):
        i = int(np.argmin(np.abs(e - line)))
        spectrum[i] += weight
        planted.append(float(e[i]))
    syn = generate_events(
        e, spectrum, counts=40_000.0, n_frames=5_000_000, rows=rows, cols=cols,
        sharing_fraction=0.05, gain_kev_per_adu=gain, offset_kev=offset, seed=4,
    )  # fmt: skip
    # the file's own calibration is only nominal: 2 % off in gain, 0.5 keV in offset
    nominal = Calibration(gain * 1.02, offset + 0.5)
    path = tmp_path / "am241.h5"
    write_hexitec_events(path, frame=syn.frame, row=syn.row, col=syn.col, adu=syn.adu,
                         calibration=nominal, rows=rows, cols=cols)  # fmt: skip
    summary = run_events_calibrate(path, tmp_path / "cal.h5", lines_kev=tuple(planted))
    cal = read_calibration(tmp_path / "cal.h5", rows=rows, cols=cols)
    assert summary["pixels_masked"] == 0
    adu94 = (94.0 - offset) / gain
    error_kev = cal.gain_kev_per_adu * adu94 + cal.offset_kev - 94.0
    assert np.max(np.abs(error_kev)) < 0.02
    assert abs(summary["median_fwhm_kev"] - 0.8) < 0.05
