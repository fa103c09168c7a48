"""Event clustering and histogramming against hand-built frames, scipy.ndimage and ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from analysis_engine.events import EnergyBinning, SpectrumAccumulator, clustering, histogram_events
from analysis_engine.events.commands import run_events
from analysis_engine.events.reference import histogram_events_reference
from analysis_engine.io.hexitec import Calibration, write_hexitec_events, write_hexitec_frames
from analysis_engine.io.spectra import read_spectra
from analysis_engine.synthetic.hexitec import (
    beamline_spectrum,
    blur_spectrum,
    generate_events,
    generate_frames,
    random_calibration,
)

# (frame, row, col, energy keV); 1 keV bins from 0 to 100 keV, energies on bin centres
HAND_BUILT = [
    (0, 10, 10, 50.5),  # single
    (1, 20, 20, 30.5),  # 2-pixel cluster, larger share at (20, 21)
    (1, 20, 21, 40.5),
    (1, 60, 60, 12.5),  # single in the same frame
    (2, 30, 30, 10.5),  # 3-pixel diagonal chain, largest at (32, 32)
    (2, 31, 31, 20.5),
    (2, 32, 32, 30.5),
    (3, 40, 40, 15.5),  # two pixels with a gap: two singles
    (3, 40, 42, 16.5),
    (4, 5, 79, 25.5),  # (5, 79) and (6, 0) touch only if rows wrapped: two singles
    (4, 6, 0, 26.5),
    (5, 50, 51, 44.5),  # diagonal pair, larger share at (49, 50)
    (5, 49, 50, 45.5),
    (7, 70, 70, 99.5),  # 2-pixel cluster summed to 120 keV: out of range in paper/add
    (7, 70, 71, 20.5),
]


def _hand_built_expected(mode: str) -> dict[tuple[int, int, int], int]:
    singles = {(10, 10, 50), (60, 60, 12), (40, 40, 15), (40, 42, 16), (5, 79, 25), (6, 0, 26)}
    expected = dict.fromkeys(singles, 1)
    if mode in ("paper", "add"):
        expected[(20, 21, 71)] = 1
        expected[(49, 50, 90)] = 1
    if mode == "add":
        expected[(32, 32, 61)] = 1
    if mode == "none":
        expected = {}
        for _, r, c, e in HAND_BUILT:
            expected[(r, c, int(e))] = expected.get((r, c, int(e)), 0) + 1
    return expected


@pytest.mark.parametrize("mode", ["paper", "discriminate", "add", "none"])
def test_hand_built_frames_give_exact_histograms(mode):
    frame, row, col, energy = (np.array(v) for v in zip(*HAND_BUILT, strict=True))
    result = histogram_events(
        frame.astype(np.uint32),
        row.astype(np.uint8),
        col.astype(np.uint8),
        energy.astype(np.float32),
        charge_sharing=mode,
        bin_width_kev=1.0,
        range_kev=(0.0, 100.0),
    )
    expected = np.zeros((80, 80, 100), dtype=np.uint32)
    for (r, c, b), n in _hand_built_expected(mode).items():
        expected[r, c, b] += n
    np.testing.assert_array_equal(result.pixel_histograms, expected)
    stats = result.stats
    assert stats["clusters"] == {"1": 6, "2": 3, "3+": 1}
    assert stats["events_in"] == len(HAND_BUILT)
    assert stats["frames_with_hits"] == 7
    out_of_range = {"paper": 1, "add": 1, "discriminate": 0, "none": 0}[mode]
    assert stats["events_out_of_range"] == out_of_range
    assert stats["events_counted"] == int(expected.sum())
    dropped = {"paper": 3, "discriminate": 9, "add": 0, "none": 0}[mode]
    assert stats["events_dropped"] == dropped


def test_bad_pixels_are_removed_before_clustering():
    frame = np.array([0, 0, 1], dtype=np.uint32)
    row = np.array([3, 3, 9], dtype=np.uint8)
    col = np.array([3, 4, 9], dtype=np.uint8)
    energy = np.array([40.5, 30.5, 20.5], dtype=np.float32)
    bad = np.zeros((80, 80), bool)
    bad[3, 4] = True
    result = histogram_events(
        frame, row, col, energy, bin_width_kev=1.0, range_kev=(0, 100), bad_pixels=bad
    )
    assert result.pixel_histograms[3, 3, 40] == 1  # the masked neighbour no longer shares
    assert result.pixel_histograms.sum() == 2
    assert result.stats["events_masked"] == 1
    assert result.stats["pixels_masked"] == 1


def _random_events(seed, n_frames=3000, hits_per_frame=12.0):
    rng = np.random.default_rng(seed)
    n = rng.poisson(hits_per_frame * n_frames)
    frame = np.sort(rng.integers(0, n_frames, n)).astype(np.uint32)
    # clumps of hits near a few centres per frame make many multi-pixel clusters
    row = np.clip(rng.normal(40, 6, n), 0, 79).astype(np.uint8)
    col = np.clip(rng.normal(40, 6, n), 0, 79).astype(np.uint8)
    key = frame.astype(np.int64) * 6400 + row.astype(np.int64) * 80 + col
    _, first = np.unique(key, return_index=True)
    first.sort()
    energy = rng.uniform(0.0, 120.0, first.size).astype(np.float32)
    return frame[first], row[first], col[first], energy


@pytest.mark.parametrize("mode", ["paper", "discriminate", "add", "none"])
def test_kernel_matches_scipy_ndimage_label(mode):
    frame, row, col, energy = _random_events(7, n_frames=800)
    fast = histogram_events(
        frame, row, col, energy, charge_sharing=mode, bin_width_kev=0.5, range_kev=(0, 100)
    )
    ref, counts = histogram_events_reference(
        frame, row, col, energy, charge_sharing=mode, bin_width_kev=0.5, range_kev=(0, 100)
    )
    assert counts["2"] > 100 and counts["3+"] > 100  # the comparison exercises every size
    assert fast.stats["clusters"] == counts
    np.testing.assert_array_equal(fast.pixel_histograms, ref)


def test_block_boundaries_and_threads_do_not_change_the_result(tmp_path, monkeypatch):
    frame, row, col, energy = _random_events(11)
    path = tmp_path / "events.h5"
    write_hexitec_events(path, frame=frame, row=row, col=col, energy_kev=energy)
    outputs = []
    for block in (997, 4096, 12_345, 10_000_000):
        out = tmp_path / f"spectra_{block}.h5"
        summary = run_events(path, out, block_events=block, bin_width_kev=0.25)
        outputs.append((read_spectra(out)[1], summary))
    for cube, summary in outputs[1:]:
        np.testing.assert_array_equal(cube, outputs[0][0])
        assert summary["clusters"] == outputs[0][1]["clusters"]
        assert summary["events_counted"] == outputs[0][1]["events_counted"]
    assert outputs[0][1]["events_in"] == frame.size
    # parallel chunks inside one block agree with a single thread too
    monkeypatch.setattr(clustering, "MIN_EVENTS_PER_CHUNK", 100)
    for threads in (1, 2, 3):
        acc = SpectrumAccumulator(EnergyBinning(0.0, 160.0, 0.25), n_threads=threads)
        _add_in_chunks(acc, frame, row, col, energy)
        np.testing.assert_array_equal(acc.result().pixel_histograms, outputs[0][0])

    # a cube handed out by result() never changes when more blocks arrive afterwards
    acc = SpectrumAccumulator(EnergyBinning(0.0, 160.0, 0.25), n_threads=2)
    acc.add_events(frame, row, col, energy)
    first = acc.result().pixel_histograms
    snapshot = first.copy()
    acc.add_events(frame + frame[-1] + 1, row, col, energy)
    np.testing.assert_array_equal(first, snapshot)
    np.testing.assert_array_equal(acc.result().pixel_histograms, 2 * snapshot)


def _add_in_chunks(acc, frame, row, col, energy):
    # split at frame boundaries into uneven blocks, as a reader would
    cuts = np.searchsorted(frame, [500, 501, 1700, 2999], side="left")
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, frame.size], strict=True):
        acc.add_events(frame[a:b], row[a:b], col[a:b], energy[a:b])


def test_generated_spectra_recovered_within_poisson_error():
    """Without charge sharing and at low occupancy, each pixel's spectrum is the planted one
    blurred by the detector resolution, within Poisson error (chi-square on 1 keV bins)."""
    rows = cols = 8
    e = np.arange(0.025, 130.0, 0.05)
    shape = beamline_spectrum(e)
    rng = np.random.default_rng(5)
    count_map = rng.uniform(2000, 6000, (rows, cols))
    syn = generate_events(
        e, shape, counts=count_map, n_frames=2_000_000, rows=rows, cols=cols,
        sharing_fraction=0.0, threshold_kev=5.0, seed=12,
    )  # fmt: skip
    result = histogram_events(
        syn.frame, syn.row, syn.col, syn.energy_kev, rows=rows, cols=cols,
        bin_width_kev=0.05, range_kev=(0.0, 130.0),
    )  # fmt: skip
    expected = blur_spectrum(e, count_map[..., None] * shape[None, None, :] / shape.sum())
    obs = result.pixel_histograms.reshape(rows, cols, -1, 20).sum(-1).astype(float)
    exp = expected.reshape(rows, cols, -1, 20).sum(-1)
    use = (exp > 10) & (np.arange(obs.shape[2]) >= 8)[None, None, :]  # above the threshold
    chi2 = np.sum((obs[use] - exp[use]) ** 2 / exp[use])
    dof = int(use.sum())
    assert abs(chi2 / dof - 1.0) < 5 * np.sqrt(2.0 / dof), (chi2, dof)
    # total counts per pixel above 8 keV agree within 4 sigma
    tot_obs, tot_exp = obs[..., 8:].sum(-1), exp[..., 8:].sum(-1)
    assert np.all(np.abs(tot_obs - tot_exp) < 4 * np.sqrt(tot_exp) + 2)


@pytest.mark.parametrize(
    ("mode", "kept"),
    [("paper", "singles_and_doubles"), ("discriminate", "singles"), ("add", "all")],
)
def test_charge_sharing_modes_recover_the_expected_photon_fractions(mode, kept):
    rows = cols = 16
    e = np.arange(0.025, 130.0, 0.05)
    spectrum = np.where(np.abs(e - 93.875) < 0.03, 1.0, 0.0)  # one line at 93.87 keV
    share2, share3 = 0.25, 0.10
    syn = generate_events(
        e, spectrum, counts=400.0, n_frames=3_000_000, rows=rows, cols=cols,
        sharing_fraction=share2, triple_fraction=share3, threshold_kev=1.0, seed=3,
    )  # fmt: skip
    result = histogram_events(
        syn.frame, syn.row, syn.col, syn.energy_kev, charge_sharing=mode, rows=rows,
        cols=cols, bin_width_kev=0.05, range_kev=(0.0, 130.0),
    )  # fmt: skip
    window = (e > 90.0) & (e < 98.0)
    counted = int(result.pixel_histograms[..., window].sum())
    photons = syn.counts["photons"]
    fraction = {"singles_and_doubles": 1 - share3, "singles": 1 - share2 - share3, "all": 1.0}
    expect = photons * fraction[kept]
    assert abs(counted - expect) < 4 * np.sqrt(expect) + 5, (counted, expect)
    # a shared photon keeps its larger part in the pixel it hit: summed doubles land there
    if mode == "paper":
        per_pixel = result.pixel_histograms[..., window].sum(-1)
        truth = syn.true_histograms.sum(-1) * (1 - share3)
        assert np.all(np.abs(per_pixel - truth) < 5 * np.sqrt(truth) + 5)


def test_raw_frames_match_event_processing_of_the_same_hits():
    e = np.arange(0.025, 130.0, 0.05)
    gain, offset = random_calibration(seed=4)
    syn = generate_frames(
        e, beamline_spectrum(e), counts=3.0, n_frames=3000, gain_kev_per_adu=gain,
        offset_kev=offset, sharing_fraction=0.2, seed=9,
    )  # fmt: skip
    from analysis_engine.events import histogram_frames, threshold_in_adu

    result = histogram_frames(
        syn.frames_adu, gain_kev_per_adu=gain, offset_kev=offset, threshold_kev=5.0,
        bin_width_kev=0.5, range_kev=(0.0, 130.0),
    )  # fmt: skip
    # the same hits written as an ADU event list give the same spectra
    thr = threshold_in_adu(5.0, gain, offset)
    f, r, c = np.nonzero(syn.frames_adu >= thr[None])
    adu = syn.frames_adu[f, r, c]
    as_events = histogram_events(
        f.astype(np.uint32), r, c, adu, values_are_adu=True, gain_kev_per_adu=gain,
        offset_kev=offset, bin_width_kev=0.5, range_kev=(0.0, 130.0),
    )  # fmt: skip
    np.testing.assert_array_equal(result.pixel_histograms, as_events.pixel_histograms)
    assert result.stats["clusters"] == as_events.stats["clusters"]
    assert result.stats["frames"] == 3000
    # no noise hits (upper bound), and nearly every photon's main hit is found (lower bound)
    primaries = syn.counts["hits"] - syn.counts["shared_2"]
    assert 0.98 * primaries <= result.stats["events_in"] <= syn.counts["hits"]


def test_threshold_in_adu_is_exact_at_the_boundary():
    from analysis_engine.events import threshold_in_adu

    gain, offset = random_calibration(4, 4, seed=1)
    t = threshold_in_adu(5.0, gain, offset)
    assert np.all(t * gain + offset >= 5.0)
    assert np.all((t - 1) * gain + offset < 5.0)


def test_frames_file_roundtrip_through_run_events(tmp_path):
    e = np.arange(0.025, 130.0, 0.05)
    gain, offset = random_calibration(seed=8)
    syn = generate_frames(e, beamline_spectrum(e), counts=1.0, n_frames=700, seed=2,
                          gain_kev_per_adu=gain, offset_kev=offset)  # fmt: skip
    path = tmp_path / "frames.h5"
    write_hexitec_frames(path, syn.frames_adu, calibration=Calibration(gain, offset),
                         threshold_kev=5.0)  # fmt: skip
    a = run_events(path, tmp_path / "a.h5", block_frames=64, bin_width_kev=0.5)
    b = run_events(path, tmp_path / "b.h5", block_frames=10_000, bin_width_kev=0.5)
    assert a == b
    assert a["frames"] == 700 and a["input_kind"] == "frames"
    np.testing.assert_array_equal(read_spectra(tmp_path / "a.h5")[1],
                                  read_spectra(tmp_path / "b.h5")[1])  # fmt: skip
