"""Occupancy per frame and pile-up diagnostics of ``events`` against closed forms.

The event stream is built here: every pixel of every frame receives Poisson(lambda) photons of
60 keV; a pixel holding N >= 1 photons in a frame reports one hit of 60 N keV (piled up), as
a HEXITEC frame holds one value per pixel. Then the number of hit pixels per frame is
Binomial(n_pixels, q) with q = 1 - exp(-lambda), and the probability of two or more photons
in a pixel in a frame is 1 - exp(-lambda) (1 + lambda): scipy.stats and numpy give the
expected values, not the engine.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy import stats

from analysis_engine.cli import main
from analysis_engine.events.commands import run_events
from analysis_engine.io.hexitec import write_hexitec_events

ROWS = COLS = 32
NPIX = ROWS * COLS


def _poisson_stream(path, lam, n_frames, seed):
    rng = np.random.default_rng(seed)
    photons = rng.poisson(lam, size=(n_frames, NPIX)).astype(np.int8)
    frame, pixel = np.nonzero(photons)  # row-major: sorted by frame
    write_hexitec_events(
        path,
        frame=frame.astype(np.uint32),
        row=(pixel // COLS).astype(np.uint16),
        col=(pixel % COLS).astype(np.uint16),
        energy_kev=(60.0 * photons[frame, pixel]).astype(np.float32),
        rows=ROWS,
        cols=COLS,
        n_frames=n_frames,
    )
    return photons


@pytest.mark.parametrize(("lam", "flagged"), [(0.01, False), (0.05, True)])
def test_occupancy_and_pileup_follow_poisson_statistics(tmp_path, lam, flagged):
    n_frames = 10_000
    src = tmp_path / "events.h5"
    photons = _poisson_stream(src, lam, n_frames, seed=3)
    out = tmp_path / "spectra.h5"
    summary = run_events(src, out, charge_sharing="none", occupancy_limit=0.02)
    d = summary["diagnostics"]

    q = -np.expm1(-lam)  # probability that a pixel is hit in a frame
    binom = stats.binom(NPIX, q)
    sd_mean = np.sqrt(q * (1 - q) / (NPIX * n_frames))
    assert d["frames"] == n_frames
    assert d["occupancy_mean"] == pytest.approx(q, abs=5 * sd_mean)
    assert d["occupancy_p99"] * NPIX == pytest.approx(binom.ppf(0.99), abs=2)
    assert binom.ppf(1 - 20 / n_frames) <= d["occupancy_max"] * NPIX <= binom.ppf(1 - 1e-5)
    assert d["occupancy_flagged"] is flagged
    assert (d["warning"] is not None) is flagged
    assert d["frames_over_limit_fraction"] == pytest.approx(
        binom.sf(np.floor(0.02 * NPIX)), abs=0.02
    )

    p2 = 1 - np.exp(-lam) * (1 + lam)
    assert d["pileup_probability_mean"] == pytest.approx(p2, rel=0.04)
    assert d["pileup_fraction_of_hits"] == pytest.approx(p2 / q, rel=0.04)
    assert d["photons_per_pixel_frame_mean"] == pytest.approx(lam, rel=0.02)
    # the stream itself: how many pixel-frames really held two or more photons (within the
    # counting noise of that number)
    piled = np.count_nonzero(photons >= 2)
    assert d["pileup_probability_mean"] * photons.size == pytest.approx(
        piled, abs=4 * np.sqrt(piled)
    )

    with h5py.File(out) as f:
        by_hits = f["diagnostics/frames_by_hits"][()]
        assert by_hits.shape == (NPIX + 1,) and by_hits.sum() == n_frames
        # the whole histogram against Binomial(NPIX, q): total variation distance
        tv = 0.5 * np.abs(by_hits / n_frames - binom.pmf(np.arange(NPIX + 1))).sum()
        assert tv < 0.05
        np.testing.assert_array_equal(
            by_hits, np.bincount((photons > 0).sum(axis=1), minlength=NPIX + 1)
        )
        assert f["diagnostics/pileup_probability"].shape == (ROWS, COLS)
        np.testing.assert_allclose(
            f["diagnostics/pixel_hit_fraction"][()].ravel(),
            (photons > 0).mean(axis=0),
            rtol=1e-6,
        )
        assert f["diagnostics"].attrs["occupancy_mean"] == pytest.approx(d["occupancy_mean"])


def test_multi_pixel_clusters_above_the_highest_line_are_counted():
    """Hand-built frames: four multi-pixel clusters summing to 71, 61, 90 and 120 keV; with
    the highest line at 100 keV one of them (25 %) must hold more than one photon."""
    from analysis_engine.events import SpectrumAccumulator
    from analysis_engine.events.clustering import EnergyBinning

    hand_built = [  # (frame, row, col, keV)
        (0, 10, 10, 50.5),  # single
        (1, 20, 20, 30.5), (1, 20, 21, 40.5),  # pair: 71 keV
        (1, 60, 60, 12.5),  # single
        (2, 30, 30, 10.5), (2, 31, 31, 20.5), (2, 32, 32, 30.5),  # diagonal triple: 61 keV
        (3, 40, 40, 15.5), (3, 40, 42, 16.5),  # a gap: two singles
        (4, 5, 79, 25.5), (4, 6, 0, 26.5),  # not neighbours (no wrap): two singles
        (5, 50, 51, 44.5), (5, 49, 50, 45.5),  # diagonal pair: 90 keV
        (7, 70, 70, 99.5), (7, 70, 71, 20.5),  # pair: 120 keV, above the 100 keV line
    ]  # fmt: skip
    frame, row, col, energy = (np.array(v) for v in zip(*hand_built, strict=True))
    acc = SpectrumAccumulator(EnergyBinning(0.0, 100.0, 1.0), pileup_energy_kev=100.0)
    acc.add_events(frame.astype(np.uint32), row, col, energy)
    stats_ = acc.stats
    assert stats_["clusters"]["2"] + stats_["clusters"]["3+"] == 4
    assert stats_["multi_pixel_clusters_over_energy"] == 1
    by_hits = acc.frames_by_hits(9)  # frames 0..8; 6 and 8 are empty
    assert by_hits[:4].tolist() == [2, 1, 4, 2]  # frames with 0, 1, 2 and 3 hits


def test_bad_diagnostics_options_exit_2(tmp_path, capsys):
    src = tmp_path / "events.h5"
    _poisson_stream(src, 0.01, 10, seed=1)
    for option, value in (("--occupancy-limit", "0"), ("--max-line-kev", "-5")):
        out = tmp_path / "x.h5"
        assert main(["events", str(src), "-o", str(out), option, value]) == 2
        assert option.strip("-").replace("-", "_") in capsys.readouterr().err
        assert not out.exists()
