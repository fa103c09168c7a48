"""Vectorised pseudo-Voigt + linear background fit of the Compton peak."""

from __future__ import annotations

import numpy as np
import pytest

from analysis_engine.compton import FLAG_LOW_COUNTS, fit_compton_peaks, pseudo_voigt_bin_counts
from analysis_engine.compton.profile import bin_edges_from_centres
from analysis_engine.errors import EngineInputError

CENTRES = np.arange(80.0, 110.0, 0.25) + 0.125
EDGES = bin_edges_from_centres(CENTRES)
TRUTH = {"area": 4000.0, "center_kev": 93.62, "fwhm_kev": 2.3, "eta": 0.35}


def _expected(**over):
    params = {**TRUTH, "background_kev": 30.0, "background_slope": -1.0, "reference_kev": 93.87}
    params.update(over)
    return pseudo_voigt_bin_counts(EDGES, **params)


def test_noiseless_single_spectrum_recovers_all_parameters():
    fit = fit_compton_peaks(_expected(area=4e6, background_kev=3e4, background_slope=-1e3), CENTRES)
    assert fit.flags == 0
    assert float(fit.center_kev) == pytest.approx(93.62, abs=1e-6)
    assert float(fit.fwhm_kev) == pytest.approx(2.3, rel=1e-6)
    assert float(fit.eta) == pytest.approx(0.35, abs=1e-5)
    assert float(fit.area) == pytest.approx(4e6, rel=1e-6)


def test_poisson_pixels_unbiased_with_honest_errors():
    rng = np.random.default_rng(3)
    counts = rng.poisson(_expected(), size=(20, 20, CENTRES.size))
    fit = fit_compton_peaks(counts, CENTRES, eta=0.35)
    assert fit.center_kev.shape == (20, 20) and np.all(fit.flags == 0)
    for name, truth in (("center_kev", 93.62), ("fwhm_kev", 2.3), ("area", 4000.0)):
        values = getattr(fit, name).ravel()
        sigma = getattr(
            fit,
            {"center_kev": "center_sigma_kev", "fwhm_kev": "fwhm_sigma_kev", "area": "area_sigma"}[
                name
            ],
        ).ravel()
        pull = (values - truth) / sigma
        assert abs(pull.mean()) < 0.25, name  # 400 pixels: standard error 0.05
        assert 0.85 < pull.std() < 1.15, name


def test_eta_from_summed_spectrum_when_not_given():
    rng = np.random.default_rng(4)
    counts = rng.poisson(_expected(), size=(10, 10, CENTRES.size))
    fit = fit_compton_peaks(counts, CENTRES)
    assert np.all(fit.eta == fit.eta.flat[0])
    assert float(fit.eta.flat[0]) == pytest.approx(0.35, abs=0.05)
    assert float(np.mean(fit.center_kev)) == pytest.approx(93.62, abs=0.01)


def test_low_count_pixels_flagged_not_fitted():
    rng = np.random.default_rng(5)
    counts = rng.poisson(_expected(), size=(3, CENTRES.size))
    counts[1] = 0
    counts[2] = rng.poisson(_expected() * 0.01)
    fit = fit_compton_peaks(counts, CENTRES, eta=0.35, min_counts=200)
    assert fit.flags[0] == 0 and np.isfinite(fit.center_kev[0])
    assert np.all(fit.flags[1:] & FLAG_LOW_COUNTS)
    assert np.all(np.isnan(fit.center_kev[1:]))


def test_fit_window_must_hold_bins():
    with pytest.raises(EngineInputError, match="whole energy bins"):
        fit_compton_peaks(np.ones(CENTRES.size), CENTRES, window_kev=(120.0, 130.0))


def test_variable_projection_matches_bounded_lm_maximum_likelihood():
    # the fast path must land on the same Poisson optimum as the (slow) bounded LM, here on
    # pixels of varying width and area where the start (the summed fit) is several sigma off
    from analysis_engine.compton.peakfit import _levenberg_marquardt

    rng = np.random.default_rng(7)
    widths = rng.uniform(1.6, 3.2, 60)
    areas = rng.uniform(1500.0, 8000.0, 60)
    mean = np.stack([_expected(fwhm_kev=w, area=a) for w, a in zip(widths, areas, strict=True)])
    counts = rng.poisson(mean)
    fit = fit_compton_peaks(counts, CENTRES, eta=0.35)
    assert np.all(fit.flags == 0)
    edges = EDGES[(EDGES >= fit.window_kev[0] - 1e-9) & (EDGES <= fit.window_kev[1] + 1e-9)]
    inside = (CENTRES > edges[0]) & (CENTRES < edges[-1])
    e_ref = 0.5 * (edges[0] + edges[-1])
    start = np.stack(
        [
            fit.area,
            fit.center_kev + 0.05,
            fit.fwhm_kev * 1.1,
            fit.background_kev,
            fit.background_slope,
        ],
        axis=1,
    )
    t, cov, _, ok = _levenberg_marquardt(
        counts[:, inside].astype(float), edges, e_ref, start, 0.35, 200, 1e-12, step_sigma=1e-4
    )
    assert np.all(ok)
    for col, value, sigma in (
        (1, fit.center_kev, fit.center_sigma_kev),
        (2, fit.fwhm_kev, fit.fwhm_sigma_kev),
        (0, fit.area, fit.area_sigma),
    ):
        assert np.max(np.abs(value - t[:, col]) / sigma) < 0.1  # converged to 0.03 sigma steps
        assert np.allclose(sigma, np.sqrt(cov[:, col, col]), rtol=0.01)
    # planted truth recovered within 4 sigma in every pixel
    assert np.max(np.abs(fit.fwhm_kev - widths) / fit.fwhm_sigma_kev) < 4.0
    assert np.max(np.abs(fit.center_kev - 93.62) / fit.center_sigma_kev) < 4.0


def test_pixel_without_peak_does_not_disturb_the_others():
    rng = np.random.default_rng(8)
    good = rng.poisson(_expected(), size=(4, CENTRES.size))
    flat = rng.poisson(np.full(CENTRES.size, 20.0))
    fit = fit_compton_peaks(np.vstack([good, flat]), CENTRES, eta=0.35)
    alone = fit_compton_peaks(good, CENTRES, eta=0.35)
    # a flat spectrum either fails or gives a peak consistent with zero area
    assert fit.flags[4] != 0 or fit.area[4] < 4.0 * fit.area_sigma[4]
    assert np.all(fit.flags[:4] == 0)
    assert np.allclose(
        fit.center_kev[:4], alone.center_kev, atol=0.1 * np.max(alone.center_sigma_kev)
    )
