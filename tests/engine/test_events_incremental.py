"""Live spectra from pieces cut anywhere equal the batch ``events`` command on the whole file.

The expected values come from another route: ``run_events`` reading the complete file written
by the io layer (and, for a small case, the pure-Python reference clustering).
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.events import EnergyBinning, SpectrumAccumulator
from analysis_engine.events.commands import run_events
from analysis_engine.events.incremental import LiveEventSpectra, split_whole_frames
from analysis_engine.events.reference import histogram_events_reference
from analysis_engine.io.hexitec import Calibration, write_hexitec_events, write_hexitec_frames
from analysis_engine.io.spectra import read_spectra
from analysis_engine.synthetic.hexitec import (
    beamline_spectrum,
    generate_events,
    generate_frames,
    random_calibration,
)

BIN_WIDTH_KEV, RANGE_KEV = 0.25, (0.0, 130.0)


def binning() -> EnergyBinning:
    return EnergyBinning(RANGE_KEV[0], RANGE_KEV[1], BIN_WIDTH_KEV)


@pytest.fixture(scope="module")
def events():
    e = np.arange(0.025, 130.0, 0.05)
    # high sharing: many clusters straddle the random cuts below if frames were split
    return generate_events(
        e, beamline_spectrum(e), counts=4.0, n_frames=4000, sharing_fraction=0.4,
        triple_fraction=0.1, seed=11,
    )  # fmt: skip


def random_cuts(n: int, pieces: int, seed: int) -> list[int]:
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), pieces - 1, replace=False))
    return [0, *cuts.tolist(), n]


def checkpoint(live: LiveEventSpectra) -> dict:
    """Through bytes, as the platform stores it (numpy .npz)."""
    buffer = io.BytesIO()
    np.savez(buffer, **live.state())
    buffer.seek(0)
    with np.load(buffer) as saved:
        return {k: saved[k] for k in saved.files}


def test_events_cut_mid_frame_with_a_resume_equal_the_batch_command(events, tmp_path):
    path = tmp_path / "acq.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    summary = run_events(path, tmp_path / "batch.h5", bin_width_kev=BIN_WIDTH_KEV,
                         range_kev=RANGE_KEV)  # fmt: skip
    _, batch, _ = read_spectra(tmp_path / "batch.h5")

    n = len(events.frame)
    cuts = random_cuts(n, 37, seed=5)
    # at least some cuts fall inside a frame (same frame number on both sides)
    assert sum(events.frame[c - 1] == events.frame[c] for c in cuts[1:-1]) > 5
    live = LiveEventSpectra(SpectrumAccumulator(binning()))
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        live.add_events(events.frame[a:b], events.row[a:b], events.col[a:b],
                        events.energy_kev[a:b])  # fmt: skip
        assert live.events_consumed == b
        if i == 18:  # the worker dies here; a new one resumes from the checkpoint
            live = LiveEventSpectra.from_state(SpectrumAccumulator(binning()), checkpoint(live))
        snap = live.snapshot().pixel_histograms
        assert snap.sum() <= batch.sum()
    result = live.finish()
    np.testing.assert_array_equal(result.pixel_histograms, batch)
    assert result.pixel_histograms.dtype == batch.dtype
    assert result.stats["clusters"] == summary["clusters"]
    assert result.stats["events_counted"] == summary["events_counted"]


def test_small_stream_matches_the_reference_clustering():
    # three frames; the 2-pixel cluster of frame 1 is cut between two pieces
    frame = np.array([0, 1, 1, 1, 2], dtype=np.uint32)
    row = np.array([5, 10, 10, 40, 7], dtype=np.uint8)
    col = np.array([5, 10, 11, 40, 7], dtype=np.uint8)
    energy = np.array([60.0, 70.0, 30.0, 50.0, 90.0], dtype=np.float32)
    live = LiveEventSpectra(SpectrumAccumulator(binning()))
    assert live.add_events(frame[:2], row[:2], col[:2], energy[:2]) == 1  # frame 1 waits
    assert live.events_held == 1
    live.add_events(frame[2:], row[2:], col[2:], energy[2:])
    result = live.finish()
    expected, _ = histogram_events_reference(
        frame, row, col, energy, bin_width_kev=BIN_WIDTH_KEV, range_kev=RANGE_KEV
    )
    np.testing.assert_array_equal(result.pixel_histograms, expected)
    # paper rule: the shared 70 + 30 keV pair counts once, as 100 keV at the larger pixel
    assert result.pixel_histograms[10, 10].sum() == 1
    assert result.pixel_histograms[10, 10, int(100.0 / BIN_WIDTH_KEV)] == 1


def test_a_piece_out_of_order_is_refused_and_nothing_is_counted(events):
    live = LiveEventSpectra(SpectrumAccumulator(binning()))
    a, b = 1000, 2000
    live.add_events(events.frame[a:b], events.row[a:b], events.col[a:b], events.energy_kev[a:b])
    before = live.snapshot().pixel_histograms.sum(), live.events_consumed
    with pytest.raises(EngineInputError, match="out of order"):
        live.add_events(events.frame[:a], events.row[:a], events.col[:a], events.energy_kev[:a])
    assert (live.snapshot().pixel_histograms.sum(), live.events_consumed) == before
    live.finish()
    with pytest.raises(EngineInputError, match="finished"):
        live.add_events(events.frame[b:], events.row[b:], events.col[b:], events.energy_kev[b:])


def test_raw_frame_bytes_cut_anywhere_equal_the_batch_command(tmp_path):
    e = np.arange(0.025, 130.0, 0.05)
    gain, offset = random_calibration(seed=4)
    syn = generate_frames(e, beamline_spectrum(e), counts=2.0, n_frames=900, seed=9,
                          gain_kev_per_adu=gain, offset_kev=offset, sharing_fraction=0.3)  # fmt: skip
    path = tmp_path / "frames.h5"
    cal = Calibration(gain_kev_per_adu=gain, offset_kev=offset)
    write_hexitec_frames(path, syn.frames_adu, calibration=cal, threshold_kev=5.0)
    run_events(path, tmp_path / "batch.h5", bin_width_kev=BIN_WIDTH_KEV, range_kev=RANGE_KEV)
    _, batch, _ = read_spectra(tmp_path / "batch.h5")

    # the bytes a writer puts on disk, read in pieces that end mid-frame
    raw = syn.frames_adu.astype("<u2").tobytes()
    acc = SpectrumAccumulator(binning(), gain_kev_per_adu=gain, offset_kev=offset,
                              threshold_kev=5.0)  # fmt: skip
    pending, frames_seen = b"", 0
    for a, b in zip(*(lambda c: (c[:-1], c[1:]))(random_cuts(len(raw), 23, seed=2)), strict=True):
        pending += raw[a:b]
        frames, used = split_whole_frames(pending)
        assert used % (80 * 80 * 2) == 0 and len(pending) - used < 80 * 80 * 2
        acc.add_frames(frames)
        frames_seen += len(frames)
        pending = pending[used:]
    assert pending == b"" and frames_seen == 900
    np.testing.assert_array_equal(acc.result().pixel_histograms, batch)
