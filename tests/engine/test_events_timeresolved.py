"""Time-resolved maps: a replayed acquisition whose Li changes at a planted rate.

Ground truth is planted (``analysis_engine.synthetic.operando``): every time slice's spectra
are drawn (Poisson, photon by photon through the HEXITEC event simulator) from profiles whose S
corresponds, through the paper's Table 2 calibration, to Li(t) = li0 + rate * t per region. The recovered rate must match the
planted one within 3 of its own standard errors, and the standard error must be small enough
for the test to mean something.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.events.timeresolved import li_of_time, time_resolved_spectra
from analysis_engine.synthetic.operando import operando_events

FRAME_RATE_HZ, SLICE_S, N_SLICES = 9000.0, 1.0, 6
LI0 = np.array([0.45, 0.55, 0.65])  # regions 1..3 (row thirds)
RATE_PER_S = np.array([0.02, -0.015, 0.0])


def regions() -> np.ndarray:
    labels = np.zeros((80, 80), dtype=int)
    for r, (a, b) in enumerate([(0, 27), (27, 54), (54, 80)], start=1):
        labels[a:b] = r
    return labels


@pytest.fixture(scope="module")
def replay():
    ev = operando_events(
        regions(), LI0, RATE_PER_S, duration_s=N_SLICES * SLICE_S, slice_s=SLICE_S,
        frame_rate_hz=FRAME_RATE_HZ, counts_per_pixel_per_s=40.0, seed=7,
    )  # fmt: skip
    assert ev.n_frames == N_SLICES * FRAME_RATE_HZ * SLICE_S
    return ev.frame, ev.row, ev.col, ev.energy_kev


def test_li_of_time_recovers_the_planted_rate(replay):
    frame, row, col, energy = replay
    t, bins, cubes = time_resolved_spectra(
        frame, row, col, energy, frame_rate_hz=FRAME_RATE_HZ, slice_s=SLICE_S,
        charge_sharing="none",
    )  # fmt: skip
    assert cubes.shape[0] == N_SLICES
    np.testing.assert_allclose(t, (np.arange(N_SLICES) + 0.5) * SLICE_S)
    # nothing lost or counted twice by the slicing
    assert int(cubes.sum()) == int(((energy >= 0) & (energy < 160.0)).sum())
    result = li_of_time(t, bins, cubes, regions=regions())
    assert np.all(result.rate_sigma_per_s < 0.004)
    assert np.all(np.abs(result.rate_per_s - RATE_PER_S) < 3 * result.rate_sigma_per_s), (
        result.rate_per_s,
        result.rate_sigma_per_s,
    )
    # each slice's Li is the planted one within 4 sigma
    planted = LI0[:, None] + RATE_PER_S[:, None] * t[None, :]
    assert np.all(np.abs(result.li - planted) < 4 * result.li_sigma)


def test_bad_slicing_is_refused():
    f = np.array([0, 1], dtype=np.uint32)
    z = np.zeros(2, dtype=np.uint8)
    e = np.array([60.0, 70.0], dtype=np.float32)
    with pytest.raises(EngineInputError, match="shorter than one frame"):
        time_resolved_spectra(f, z, z, e, frame_rate_hz=9000, slice_s=1e-5)
    with pytest.raises(EngineInputError, match="empty"):
        time_resolved_spectra(f[:0], z[:0], z[:0], e[:0], frame_rate_hz=9000, slice_s=1)
