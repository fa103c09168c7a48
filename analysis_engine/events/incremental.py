"""Spectra that grow while the detector acquires: chunks cut anywhere, whole frames clustered.

A live acquisition arrives in pieces that know nothing of frames: an HTTP chunk from a
beamline script or the new bytes of a file being written may end in the middle of a frame.
Clustering is per frame (8-connected hits of one frame), so a frame processed in two halves
could split a cluster. :class:`LiveEventSpectra` therefore holds back the events of the last
frame seen until a later frame starts (or the acquisition ends) and feeds only whole frames to
the batch :class:`~analysis_engine.events.clustering.SpectrumAccumulator`: the same kernels,
the same rules, and so, at the end, the same bits as the batch ``events`` command.

For raw frames, :func:`split_whole_frames` cuts a byte buffer at frame boundaries and reports
how many bytes a trailing partial frame leaves waiting.

The state (counts, counters, held-back events, events consumed) round-trips through
:meth:`LiveEventSpectra.state` / :meth:`LiveEventSpectra.from_state`, so a live job whose worker
dies resumes from its last checkpoint without losing or double-counting events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis_engine.compton import DEFAULT_CALIBRATION, LinearCalibration, s_parameter
from analysis_engine.errors import EngineInputError
from analysis_engine.events import _kernels as k
from analysis_engine.events.clustering import EnergyBinning, EventHistograms, SpectrumAccumulator

__all__ = [
    "LiveEventSpectra",
    "LiveMaps",
    "live_maps",
    "raw_frame_accumulator",
    "split_whole_frames",
]


class LiveEventSpectra:
    """Per-pixel spectra of an event list that arrives in arbitrary pieces.

    Parameters
    ----------
    accumulator
        A fresh :class:`SpectrumAccumulator` configured as the batch command would be
        (binning, charge sharing, calibration, bad pixels).
    values_are_adu
        True when the values are ADU (converted with the accumulator's calibration).
    """

    def __init__(self, accumulator: SpectrumAccumulator, *, values_are_adu: bool = False) -> None:
        self.accumulator = accumulator
        self.values_are_adu = bool(values_are_adu)
        self.events_consumed = 0  # events received (processed + held back)
        self._held: tuple[np.ndarray, ...] | None = None
        self.finished = False

    @property
    def events_held(self) -> int:
        """Events of the last (possibly incomplete) frame, waiting for the next frame."""
        return 0 if self._held is None else len(self._held[0])

    @property
    def events_processed(self) -> int:
        return self.events_consumed - self.events_held

    def add_events(
        self, frame: np.ndarray, row: np.ndarray, col: np.ndarray, values: np.ndarray
    ) -> int:
        """Add the next piece of the event list (sorted by frame; may end mid-frame).

        Parameters
        ----------
        frame, row, col, values
            (n,) arrays as in :meth:`SpectrumAccumulator.add_events`; the piece continues the
            previous one (its first frame number is not below the last one seen).

        Returns
        -------
        int
            Events clustered by this call (whole frames released).

        Raises
        ------
        EngineInputError
            Arrays of different lengths, frame numbers that decrease, or the acquisition was
            already finished.
        """
        if self.finished:
            raise EngineInputError("this live acquisition has finished: no more events")
        n = len(frame)
        if not (len(row) == len(col) == len(values) == n):
            raise EngineInputError(
                f"event arrays differ in length: frame {n}, row {len(row)}, col {len(col)}, "
                f"values {len(values)}"
            )
        if n == 0:
            return 0
        frame = np.asarray(frame)
        if frame.dtype.kind not in "ui":
            raise EngineInputError(f"frame numbers must be integers, got {frame.dtype}")
        if self._held is not None and int(frame[0]) < int(self._held[0][-1]):
            raise EngineInputError(
                f"frame numbers decrease between pieces: frame {int(frame[0])} after "
                f"{int(self._held[0][-1])} (a piece out of order?)"
            )
        parts = (frame, np.asarray(row), np.asarray(col), np.asarray(values))
        if self._held is not None:
            parts = tuple(
                np.concatenate([h, p.astype(h.dtype, copy=False)])
                for h, p in zip(self._held, parts, strict=True)
            )
        self.events_consumed += n
        # the last frame may continue in the next piece: keep it back
        cut = int(np.searchsorted(parts[0], parts[0][-1], side="left"))
        if cut > 0 and np.any(np.diff(parts[0][:cut].astype(np.int64)) < 0):
            raise EngineInputError("frame numbers are not sorted within the piece")
        self._held = tuple(np.array(p[cut:]) for p in parts)
        if cut:
            self.accumulator.add_events(
                *(p[:cut] for p in parts),
                values_are_adu=self.values_are_adu,
                index_offset=self.events_processed - cut,
            )
        return cut

    def add_frames(self, frames_adu: np.ndarray) -> int:
        """Add whole raw frames, (n, rows, cols) ADU, as the batch ``events`` reads a ``.bin``.

        A raw frame is complete in itself (its clusters never continue in the next frame), so
        nothing is held back; the caller passes only whole frames (see
        :func:`split_whole_frames`). Returns the hits found (``events_in`` of these frames).

        Raises
        ------
        EngineInputError
            Events of an event-list piece are still held back (one acquisition is either an
            event list or raw frames), the acquisition has finished, or bad frames.
        """
        if self.finished:
            raise EngineInputError("this live acquisition has finished: no more frames")
        if self._held is not None and len(self._held[0]):
            raise EngineInputError(
                "raw frames cannot follow event-list pieces in one live acquisition"
            )
        before = int(self.accumulator._stats[:, k.S_EVENTS_IN].sum())
        self.accumulator.add_frames(frames_adu)
        hits = int(self.accumulator._stats[:, k.S_EVENTS_IN].sum()) - before
        self.events_consumed += hits
        return hits

    def finish(self) -> EventHistograms:
        """The acquisition has ended: cluster the held-back last frame; return the spectra."""
        if not self.finished and self._held is not None and len(self._held[0]):
            self.accumulator.add_events(*self._held, values_are_adu=self.values_are_adu)
        self._held = None
        self.finished = True
        return self.accumulator.result()

    def snapshot(self) -> EventHistograms:
        """Spectra of the whole frames so far (the held-back frame is not in them yet).

        A copy: the accumulator keeps its per-thread cubes (no re-allocation on the next
        piece), and the returned cube never changes afterwards.
        """
        acc = self.accumulator
        merged = np.empty(acc._hist.shape[1], dtype=np.uint32)
        k.sum_rows(acc._hist, merged)
        cube = merged.reshape(acc.rows, acc.cols, acc.binning.n_bins)
        return EventHistograms(acc.binning.centres, cube, acc.stats)

    def state(self) -> dict[str, Any]:
        """Everything needed to resume: arrays and numbers (save with ``numpy.savez``)."""
        result = self.accumulator.result()
        acc = self.accumulator
        held = self._held or tuple(np.zeros(0, dtype=d) for d in (np.uint64,) * 4)
        return {
            "pixel_histograms": result.pixel_histograms,
            "stats": acc._stats.sum(axis=0),
            "last_frame": -1 if acc._last_frame is None else acc._last_frame,
            "events_consumed": self.events_consumed,
            "finished": self.finished,
            "held_frame": held[0],
            "held_row": held[1],
            "held_col": held[2],
            "held_values": held[3],
        }

    @classmethod
    def from_state(
        cls,
        accumulator: SpectrumAccumulator,
        state: dict[str, Any],
        *,
        values_are_adu: bool = False,
    ) -> LiveEventSpectra:
        """Resume from :meth:`state` into a fresh accumulator configured as the original."""
        acc = accumulator
        cube = np.asarray(state["pixel_histograms"])
        expected = (acc.rows, acc.cols, acc.binning.n_bins)
        if cube.shape != expected:
            raise EngineInputError(
                f"saved live spectra have shape {cube.shape}; this acquisition expects {expected}"
            )
        acc._hist = np.ascontiguousarray(cube, dtype=np.uint32).reshape(1, -1).copy()
        acc._handed_out = True  # the next block re-grows per-thread cubes, keeping these counts
        acc._stats[:] = 0
        saved = np.asarray(state["stats"], dtype=np.int64)[: acc._stats.shape[1]]
        acc._stats[0, : saved.size] = saved  # a checkpoint from before a counter was added
        last = int(state["last_frame"])
        acc._last_frame = None if last < 0 else last
        live = cls(acc, values_are_adu=values_are_adu)
        live.events_consumed = int(state["events_consumed"])
        live.finished = bool(state["finished"])
        held = tuple(
            np.asarray(state[k]) for k in ("held_frame", "held_row", "held_col", "held_values")
        )
        live._held = held if len(held[0]) else None
        return live


def split_whole_frames(
    buffer: bytes | bytearray | memoryview,
    *,
    rows: int = 80,
    cols: int = 80,
    dtype: np.dtype | str = "<u2",
) -> tuple[np.ndarray, int]:
    """Cut a byte buffer of raw frames at frame boundaries.

    Parameters
    ----------
    buffer
        Raw frames, row-major, ``rows * cols`` values of ``dtype`` each, possibly ending in
        a partial frame (a writer still busy with it).
    rows, cols
        Frame shape.
    dtype
        Pixel value type (HEXITEC: little-endian uint16 ADU).

    Returns
    -------
    frames : numpy.ndarray
        (n_whole, rows, cols) view of the whole frames.
    n_bytes : int
        Bytes used; the rest (a partial frame) waits for the writer to complete it.
    """
    dtype = np.dtype(dtype)
    frame_bytes = rows * cols * dtype.itemsize
    if frame_bytes <= 0:
        raise EngineInputError(f"frame shape {rows} x {cols} is empty")
    n_whole = len(buffer) // frame_bytes
    used = n_whole * frame_bytes
    frames = np.frombuffer(buffer, dtype=dtype, count=n_whole * rows * cols)
    return frames.reshape(n_whole, rows, cols), used


def raw_frame_accumulator(
    binning: EnergyBinning,
    *,
    charge_sharing: str,
    gradient_kev_per_adu: np.ndarray,
    intercept_kev: np.ndarray,
    threshold_adu: np.ndarray | None,
    bad_pixels: np.ndarray,
    threshold_kev: float = 5.0,
) -> SpectrumAccumulator:
    """An accumulator for raw ``.bin`` frames configured as the batch ``events`` command's.

    Parameters
    ----------
    binning, charge_sharing
        As for :class:`SpectrumAccumulator`.
    gradient_kev_per_adu, intercept_kev
        (80, 80) per-pixel calibration; entries of bad pixels are ignored.
    threshold_adu
        (80, 80) per-pixel noise threshold in ADU with bad pixels at 0 (as
        :meth:`~analysis_engine.io.hexitec_native.PixelCalibration.threshold_for_engine`), or
        None to use ``threshold_kev``.
    bad_pixels
        (80, 80) bool, masked pixels.
    threshold_kev
        Noise threshold in keV when there is no per-pixel ADU threshold.
    """
    bad = np.asarray(bad_pixels, dtype=bool)
    bad = bad | ~(np.isfinite(gradient_kev_per_adu) & np.isfinite(intercept_kev))
    return SpectrumAccumulator(
        binning,
        charge_sharing=charge_sharing,
        rows=bad.shape[0],
        cols=bad.shape[1],
        gain_kev_per_adu=np.where(bad, 1.0, gradient_kev_per_adu),
        offset_kev=np.where(bad, 0.0, intercept_kev),
        bad_pixels=bad if bad.any() else None,
        threshold_kev=None if threshold_adu is not None else float(threshold_kev),
        threshold_adu=threshold_adu,
    )


@dataclass(frozen=True)
class LiveMaps:
    """The maps a live page shows, from the spectra so far.

    Attributes
    ----------
    s, s_sigma, li, li_sigma : numpy.ndarray
        (rows, cols) S-parameter and Li stoichiometry (1 - x) with their Poisson standard
        deviations; NaN where a pixel has too few counts yet.
    counts_per_pixel : numpy.ndarray
        (rows, cols) counted events per pixel.
    min_counts_per_pixel, median_counts_per_pixel : float
        Over the pixels that count (not masked, any counts).
    seconds_to_target : float or None
        At the rate so far, seconds until the median pixel reaches ``target_counts_per_pixel``
        (0 when reached; None without a rate yet).
    """

    s: np.ndarray
    s_sigma: np.ndarray
    li: np.ndarray
    li_sigma: np.ndarray
    counts_per_pixel: np.ndarray
    min_counts_per_pixel: float
    median_counts_per_pixel: float
    seconds_to_target: float | None


def live_maps(
    pixel_histograms: np.ndarray,
    energy_bins_kev: np.ndarray,
    *,
    elapsed_s: float,
    target_counts_per_pixel: float = 10_000.0,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    calibration: LinearCalibration = DEFAULT_CALIBRATION,
    min_counts: float = 100.0,
) -> LiveMaps:
    """S and Li maps (paper Eqs. 7-9 and the Table 2 calibration) of spectra still growing.

    Parameters
    ----------
    pixel_histograms
        (rows, cols, n_bins) counts so far.
    energy_bins_kev
        (n_bins,) bin centres, keV.
    elapsed_s
        Acquisition time so far, s (for the time to target).
    target_counts_per_pixel
        Counts per pixel the acquisition aims at.
    incident_kev, angle_deg, calibration, min_counts
        As for :func:`analysis_engine.compton.s_parameter`; ``S = A + B (1 - x)``.

    Returns
    -------
    LiveMaps
    """
    cube = np.asarray(pixel_histograms)
    maps = s_parameter(
        cube, energy_bins_kev, incident_kev=incident_kev, angle_deg=angle_deg, min_counts=min_counts
    )
    counts = cube.sum(axis=-1, dtype=np.int64)
    live = counts[counts > 0]
    median = float(np.median(live)) if live.size else 0.0
    if median >= target_counts_per_pixel:
        remaining = 0.0
    elif median > 0 and elapsed_s > 0:
        remaining = (target_counts_per_pixel - median) * elapsed_s / median
    else:
        remaining = None
    return LiveMaps(
        s=maps.s,
        s_sigma=maps.s_sigma,
        li=calibration.stoichiometry(maps.s),
        li_sigma=calibration.stoichiometry_sigma(maps.s_sigma),
        counts_per_pixel=counts,
        min_counts_per_pixel=float(live.min()) if live.size else 0.0,
        median_counts_per_pixel=median,
        seconds_to_target=remaining,
    )
