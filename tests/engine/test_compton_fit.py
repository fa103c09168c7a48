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
