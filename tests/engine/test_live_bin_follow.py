"""Following ``.bin`` files while the acquisition software writes them.

The expected spectra come from the batch route: ``run_events`` on the complete ``.bin``
file(s) with the same calibration arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.events import EnergyBinning
from analysis_engine.events.commands import run_events
from analysis_engine.events.incremental import LiveEventSpectra, raw_frame_accumulator
from analysis_engine.io.hexitec_native import (
    FRAME_BYTES,
    read_pixel_calibration,
    scramble_frames,
    write_calibration_arrays,
)
from analysis_engine.io.live import new_bin_spans, read_bin_span
from analysis_engine.io.spectra import read_spectra
from analysis_engine.synthetic.hexitec import beamline_spectrum, generate_frames, random_calibration

BIN_WIDTH_KEV, RANGE_KEV = 0.25, (0.0, 130.0)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Raw .bin bytes of 700 frames, and the calibration arrays (with two bad pixels)."""
    e = np.arange(0.025, 130.0, 0.05)
    gain, offset = random_calibration(seed=5)
    syn = generate_frames(e, beamline_spectrum(e), counts=2.0, n_frames=700, seed=11,
                          gain_kev_per_adu=gain, offset_kev=offset, sharing_fraction=0.3)  # fmt: skip
    gain[3, 4] = np.nan
    offset[70, 9] = np.inf
    threshold = np.ceil((5.0 - offset) / np.where(np.isfinite(gain), gain, 1.0))
    threshold = np.where(np.isfinite(threshold), threshold, 0.0)
    cal_dir = tmp_path_factory.mktemp("cal")
    paths = write_calibration_arrays(cal_dir, gain, offset, threshold)
    data = scramble_frames(syn.frames_adu).astype("<u2").tobytes()
    return data, paths


def batch(paths, bin_path, out):
    run_events(bin_path, out, bin_width_kev=BIN_WIDTH_KEV, range_kev=RANGE_KEV,
               gradients_path=paths["gradients"], intercepts_path=paths["intercepts"],
               thresholds_path=paths["thresholds"])  # fmt: skip
    return read_spectra(out)[1]


def live_spectra(paths) -> LiveEventSpectra:
    cal = read_pixel_calibration(paths["gradients"], paths["intercepts"], paths["thresholds"])
    acc = raw_frame_accumulator(
        EnergyBinning(RANGE_KEV[0], RANGE_KEV[1], BIN_WIDTH_KEV), charge_sharing="paper",
        gradient_kev_per_adu=cal.gradient_kev_per_adu, intercept_kev=cal.intercept_kev,
        threshold_adu=cal.threshold_for_engine(), bad_pixels=cal.bad_pixels,
    )  # fmt: skip
    return LiveEventSpectra(acc)


def follow(folder, position, live, *, max_frames=64):
    spans, skipped = new_bin_spans(folder, position, max_frames=max_frames)
    for span in spans:
        assert span.stop - span.start <= max_frames * FRAME_BYTES
        live.add_frames(read_bin_span(folder / span.name, span.start, span.stop))
        position = (span.name, span.stop)
    return position, spans, skipped


def test_a_growing_bin_file_cut_mid_frame_with_a_resume_equals_the_batch_command(raw, tmp_path):
    data, paths = raw
    folder = tmp_path / "run"
    folder.mkdir()
    target = folder / "frames-0001.bin"
    cuts = [0, 5 * FRAME_BYTES + 777, 5 * FRAME_BYTES + 9000, 300 * FRAME_BYTES - 1,
            301 * FRAME_BYTES, 512 * FRAME_BYTES + 1, len(data)]  # fmt: skip
    live = live_spectra(paths)
    position, frames_taken = None, 0
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        with open(target, "ab") as fh:  # the writer appends the next piece
            fh.write(data[a:b])
        position, spans, skipped = follow(folder, position, live)
        frames_taken += sum(s.frames for s in spans)
        # only whole frames are taken; a partial frame at the end waits for completion
        assert frames_taken == b // FRAME_BYTES and skipped == []
        if i == 2:  # the worker dies; a new one resumes from the saved state and offset
            state = live.state()
            live = LiveEventSpectra.from_state(live_spectra(paths).accumulator, state)
    assert new_bin_spans(folder, position) == ([], [])  # nothing is taken twice
    expected = batch(paths, target, tmp_path / "batch.h5")
    result = live.finish()
    np.testing.assert_array_equal(result.pixel_histograms, expected)
    assert result.stats["frames"] == len(data) // FRAME_BYTES


def test_rotated_files_are_taken_in_order_and_a_left_behind_partial_frame_is_dropped(raw, tmp_path):
    data, paths = raw
    folder = tmp_path / "rot"
    folder.mkdir()
    first = data[: 250 * FRAME_BYTES + 100]  # the writer abandons a partial frame at rotation
    second = data[250 * FRAME_BYTES : 600 * FRAME_BYTES]
    third = data[600 * FRAME_BYTES :]
    live = live_spectra(paths)
    (folder / "b-002.bin").write_bytes(first)
    position, spans, skipped = follow(folder, None, live, max_frames=1000)
    assert [(s.name, s.start, s.stop) for s in spans] == [("b-002.bin", 0, 250 * FRAME_BYTES)]
    (folder / "b-003.bin").write_bytes(second[:7])
    (folder / "b-010.bin").write_bytes(third)  # sorts after b-003: taken after it
    position, spans, skipped = follow(folder, position, live, max_frames=1000)
    assert skipped == [("b-002.bin", 100), ("b-003.bin", 7)]
    assert [s.name for s in spans] == ["b-010.bin"]
    assert position == ("b-010.bin", len(third))

    for name, part in (("b-002.bin", first), ("b-010.bin", third)):
        (tmp_path / name).write_bytes(part)
    expected = sum(
        batch(paths, tmp_path / name, tmp_path / f"{name}.h5").astype(np.int64)
        for name in ("b-002.bin", "b-010.bin")
    )
    np.testing.assert_array_equal(live.finish().pixel_histograms, expected)


def test_bad_positions_are_named(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\0" * FRAME_BYTES)
    with pytest.raises(EngineInputError, match="no longer in"):
        new_bin_spans(tmp_path, ("gone.bin", 0))
    with pytest.raises(EngineInputError, match="not a frame boundary"):
        new_bin_spans(tmp_path, ("a.bin", 5))
    with pytest.raises(EngineInputError, match="shrank"):
        new_bin_spans(tmp_path, ("a.bin", 2 * FRAME_BYTES))
    with pytest.raises(EngineInputError, match="not a folder"):
        new_bin_spans(tmp_path / "a.bin", None)
    with pytest.raises(EngineInputError, match="expected"):
        read_bin_span(tmp_path / "a.bin", 0, 2 * FRAME_BYTES)
    assert new_bin_spans(tmp_path / ".." / tmp_path.name, None)[0][0].frames == 1
