"""Charge-sharing correction and per-pixel histogramming of HEXITEC photon hits.

Per frame, hits in 8-connected neighbouring pixels form one cluster (one photon whose charge
cloud spread over several pixels). The paper's rule (Huang et al. 2022, Methods, XCS-I; see
``SCIENCE.md`` "Event processing"): 1-pixel clusters are kept; a 2-pixel cluster is summed and
assigned to the pixel with the larger energy; clusters of 3 or more pixels are dropped.

:class:`SpectrumAccumulator` streams blocks of events or raw frames into the histogram cube
``(rows, cols, n_bins)``; :func:`histogram_events` and :func:`histogram_frames` are one-shot
wrappers for arrays held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.events import _kernels as k

__all__ = [
    "CHARGE_SHARING_MODES",
    "EnergyBinning",
    "EventHistograms",
    "SpectrumAccumulator",
    "histogram_events",
    "histogram_frames",
    "threshold_in_adu",
]

#: ``paper``: keep singles, sum doubles onto the larger pixel, drop 3+ (the paper's rule);
#: ``discriminate``: keep singles only; ``add``: sum every cluster onto its largest pixel;
#: ``none``: histogram every hit where it landed (clusters are still counted).
CHARGE_SHARING_MODES = ("paper", "discriminate", "add", "none")
#: Blocks are split into parallel chunks of at least this many events.
MIN_EVENTS_PER_CHUNK = 50_000
_MODE_CODES = {
    "paper": k.MODE_PAPER,
    "discriminate": k.MODE_DISCRIMINATE,
    "add": k.MODE_ADD,
    "none": k.MODE_NONE,
}


@dataclass(frozen=True)
class EnergyBinning:
    """Uniform energy bins ``[lo_kev + i w, lo_kev + (i + 1) w)``, ``i = 0 .. n_bins - 1``.

    Parameters
    ----------
    lo_kev, hi_kev
        Range in keV (or in ADU when histogramming raw ADU for calibration).
    bin_width_kev
        Bin width; ``(hi - lo) / width`` must be a whole number (to 1e-6).
    """

    lo_kev: float = 0.0
    hi_kev: float = 160.0
    bin_width_kev: float = 0.05

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lo_kev) and np.isfinite(self.hi_kev)):
            raise EngineInputError("energy range must be finite numbers")
        if self.hi_kev <= self.lo_kev:
            raise EngineInputError(
                f"energy range {self.lo_kev}..{self.hi_kev} keV is empty: expected LO < HI"
            )
        if not self.bin_width_kev > 0:
            raise EngineInputError(f"bin width must be positive, got {self.bin_width_kev}")
        n = (self.hi_kev - self.lo_kev) / self.bin_width_kev
        if abs(n - round(n)) > 1e-6 * max(1.0, n):
            raise EngineInputError(
                f"energy range {self.lo_kev}..{self.hi_kev} keV is not a whole number of "
                f"{self.bin_width_kev} keV bins"
            )
        if round(n) > 1_000_000:
            raise EngineInputError(f"{round(n)} energy bins is too many (at most 1,000,000)")

    @property
    def n_bins(self) -> int:
        return int(round((self.hi_kev - self.lo_kev) / self.bin_width_kev))

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, shape (n_bins + 1,)."""
        return self.lo_kev + self.bin_width_kev * np.arange(self.n_bins + 1, dtype=np.float64)

    @property
    def centres(self) -> np.ndarray:
        """Bin centres, shape (n_bins,); written as ``/energy_bins``."""
        return self.lo_kev + self.bin_width_kev * (np.arange(self.n_bins, dtype=np.float64) + 0.5)


@dataclass(frozen=True)
class EventHistograms:
    """Per-pixel spectra and the bookkeeping of how every hit was used.

    Attributes
    ----------
    energy_bins_kev
        Bin centres, shape (n_bins,).
    pixel_histograms
        Counts, shape (rows, cols, n_bins), uint32, indexed [row, col, bin].
    stats
        Counters: ``frames``, ``frames_with_hits``, ``events_in``, ``events_counted``,
        ``events_out_of_range``, ``events_masked``, ``events_dropped``, ``clusters``
        ({"1", "2", "3+"}), ``cluster_size_histogram`` (sizes 1..8 and 9+).
    """

    energy_bins_kev: np.ndarray
    pixel_histograms: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def summed_histogram(self) -> np.ndarray:
        """Sum over all pixels, shape (n_bins,), uint64."""
        return self.pixel_histograms.sum(axis=(0, 1), dtype=np.uint64)


def threshold_in_adu(
    threshold_kev: float, gain_kev_per_adu: np.ndarray, offset_kev: np.ndarray
) -> np.ndarray:
    """Smallest ADU per pixel whose calibrated energy is at least ``threshold_kev``.

    Computed so that ``adu >= result`` is exactly ``adu * gain + offset >= threshold_kev`` in
    float64, the arithmetic the kernels use. Pixels with non-positive gain never trigger.

    Returns
    -------
    numpy.ndarray
        int32, same shape as ``gain_kev_per_adu``; 65536 where no uint16 value reaches it.
    """
    gain = np.asarray(gain_kev_per_adu, dtype=np.float64)
    offset = np.asarray(offset_kev, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.ceil((threshold_kev - offset) / gain)
    guess = np.where(np.isfinite(guess) & (gain > 0), guess, 65536)
    t = np.clip(guess, 0, 65536).astype(np.int64)
    for _ in range(3):  # fix float rounding at the boundary either way
        below = (t > 0) & ((t - 1) * gain + offset >= threshold_kev)
        t = np.where(below, t - 1, t)
        above = (t < 65536) & (t * gain + offset < threshold_kev)
        t = np.where(above, t + 1, t)
    t = np.where(gain > 0, t, 65536)
    return t.astype(np.int32)


class SpectrumAccumulator:
    """Stream blocks of HEXITEC hits into per-pixel spectra.

    Each block must hold whole frames (a frame is never split across two blocks) and the
    blocks must come in frame order; the readers in :mod:`analysis_engine.io.hexitec` do so.

    Parameters
    ----------
    binning
        Energy bins.
    charge_sharing
        One of :data:`CHARGE_SHARING_MODES`.
    rows, cols
        Detector size (80 x 80 for HEXITEC).
    gain_kev_per_adu, offset_kev
        Per-pixel calibration (rows, cols), needed for ADU input and raw frames.
    bad_pixels
        (rows, cols) bool, True for pixels whose hits are discarded before clustering (dead or
        noisy pixels from calibration).
    threshold_kev
        Raw frames only: a pixel is hit when its calibrated energy is at least this.
    threshold_adu
        Raw frames only, instead of ``threshold_kev``: (rows, cols) per-pixel noise threshold
        in ADU as HEXITEC calibrations give it; a pixel is hit when its ADU is at least this.
    n_threads
        Parallel chunks per block (default: numba's thread count).
    pileup_energy_kev
        Multi-pixel clusters whose summed energy exceeds this (the highest line energy of the
        measurement) are counted as pile-up candidates (:meth:`diagnostics`).
    """

    def __init__(
        self,
        binning: EnergyBinning,
        *,
        charge_sharing: str = "paper",
        rows: int = 80,
        cols: int = 80,
        gain_kev_per_adu: np.ndarray | None = None,
        offset_kev: np.ndarray | None = None,
        bad_pixels: np.ndarray | None = None,
        threshold_kev: float | None = None,
        threshold_adu: np.ndarray | None = None,
        n_threads: int | None = None,
        pileup_energy_kev: float = np.inf,
    ) -> None:
        if charge_sharing not in _MODE_CODES:
            raise EngineInputError(
                f"unknown charge-sharing mode {charge_sharing!r}: expected one of "
                f"{', '.join(CHARGE_SHARING_MODES)}"
            )
        if rows < 1 or cols < 1:
            raise EngineInputError(f"detector size {rows} x {cols} is empty")
        self.binning = binning
        self.charge_sharing = charge_sharing
        self.rows, self.cols = int(rows), int(cols)
        self._mode = _MODE_CODES[charge_sharing]
        self._n_threads = max(1, int(n_threads or k.n_threads()))
        npix = self.rows * self.cols
        self._gain = self._pixel_map(gain_kev_per_adu, "gain_kev_per_adu", np.float64, 1.0)
        self._offset = self._pixel_map(offset_kev, "offset_kev", np.float64, 0.0)
        self._has_calibration = gain_kev_per_adu is not None
        self._mask = self._pixel_map(bad_pixels, "bad_pixels", np.bool_, False)
        self._threshold_kev = threshold_kev
        self._threshold_adu = None
        if threshold_kev is not None:
            self._threshold_adu = threshold_in_adu(threshold_kev, self._gain, self._offset)
        if threshold_adu is not None:
            per_pixel = self._pixel_map(threshold_adu, "threshold_adu", np.float64, 0.0)
            self._threshold_adu = np.clip(np.ceil(per_pixel), 0, 65536).astype(np.int32)
        self._hist = np.zeros((self._n_threads, npix * binning.n_bins), dtype=np.uint32)
        self._stats = np.zeros((self._n_threads, k.N_STATS), dtype=np.int64)
        # occupancy / pile-up diagnostics: frames by hit pixels, hits per pixel
        self._occ = np.zeros((self._n_threads, npix + 1), dtype=np.int64)
        self._pixhits = np.zeros((self._n_threads, npix), dtype=np.int64)
        self._e_over = float(pileup_energy_kev)
        self._handed_out = False  # result() returned a view of self._hist[0]
        self._last_frame: int | None = None
        self._lo = float(binning.lo_kev)
        self._inv_w = float(binning.n_bins / (binning.hi_kev - binning.lo_kev))

    def _thread_hists(self, n: int) -> np.ndarray:
        """The first ``n`` per-thread cubes, re-grown (counts kept) after :meth:`result`."""
        if self._handed_out or self._hist.shape[0] < n:
            grown = np.zeros((self._n_threads, self._hist.shape[1]), dtype=np.uint32)
            grown[0] = self._hist[0]
            self._hist = grown
            self._handed_out = False
        return self._hist[:n]

    def _pixel_map(self, value, name, dtype, default) -> np.ndarray:
        if value is None:
            return np.full(self.rows * self.cols, default, dtype=dtype)
        arr = np.asarray(value)
        if arr.shape != (self.rows, self.cols):
            raise EngineInputError(
                f"{name} has shape {arr.shape}; expected ({self.rows}, {self.cols}), one value "
                "per detector pixel"
            )
        if dtype is not np.bool_ and not np.all(np.isfinite(arr)):
            raise EngineInputError(f"{name} contains NaN or infinite values")
        return np.ascontiguousarray(arr, dtype=dtype).ravel()

    def _raise_kernel_error(self, stats: np.ndarray, index_offset: int) -> None:
        bad = np.flatnonzero(stats[:, k.S_ERROR])
        if bad.size == 0:
            return
        code = int(stats[bad[0], k.S_ERROR])
        where = int(stats[bad[0], k.S_ERROR_INDEX]) + index_offset
        if code == k.ERROR_FRAME_DECREASES:
            raise EngineInputError(
                f"frame numbers are not monotonic: /events/frame decreases at event {where}; "
                "HEXITEC event lists must be sorted by frame"
            )
        raise EngineInputError(
            f"event {where} has a pixel index outside the {self.rows} x {self.cols} detector"
        )

    def add_events(
        self,
        frame: np.ndarray,
        row: np.ndarray,
        col: np.ndarray,
        values: np.ndarray,
        *,
        values_are_adu: bool = False,
        index_offset: int = 0,
    ) -> None:
        """Add a block of events (whole frames, sorted by frame).

        Parameters
        ----------
        frame, row, col
            (n,) integer arrays: frame number, pixel row and column.
        values
            (n,) energies in keV (float), or ADU when ``values_are_adu`` (then the per-pixel
            calibration converts them, or, without calibration, ADU are binned as they are).
        index_offset
            Position of the block's first event in the file, for error messages.
        """
        n = len(frame)
        if not (len(row) == len(col) == len(values) == n):
            raise EngineInputError(
                f"event arrays differ in length: frame {n}, row {len(row)}, col {len(col)}, "
                f"values {len(values)}"
            )
        if n == 0:
            return
        frame = np.ascontiguousarray(frame)
        if frame.dtype.kind not in "ui":
            raise EngineInputError(f"frame numbers must be integers, got {frame.dtype}")
        row = np.ascontiguousarray(row)
        col = np.ascontiguousarray(col)
        values = np.ascontiguousarray(values)
        apply_cal = bool(values_are_adu and self._has_calibration)
        bounds = self._frame_aligned_bounds(frame)
        prev = np.array([self._last_frame if self._last_frame is not None else 0]).astype(
            frame.dtype
        )
        has_prev = self._last_frame is not None
        if has_prev and frame.dtype.kind == "u" and self._last_frame > np.iinfo(frame.dtype).max:
            raise EngineInputError("frame numbers decrease between blocks")
        stats = np.zeros_like(self._stats)
        k.events_parallel(
            frame, row, col, values, bounds, prev, has_prev, self._gain, self._offset,
            apply_cal, self._mask, self.rows, self.cols, self._mode, self._lo, self._inv_w,
            self.binning.n_bins, self._thread_hists(len(bounds) - 1), stats[: len(bounds) - 1],
            self._e_over, self._occ, self._pixhits,
        )  # fmt: skip
        self._raise_kernel_error(stats, index_offset)
        self._stats += stats
        self._last_frame = int(frame[-1])

    def add_frames(self, frames_adu: np.ndarray) -> None:
        """Add a block of raw frames, shape (n_frames, rows, cols), ADU (uint16)."""
        if self._threshold_adu is None:
            raise EngineInputError("raw frames need a noise threshold (threshold_kev)")
        frames_adu = np.ascontiguousarray(frames_adu)
        if frames_adu.ndim != 3 or frames_adu.shape[1:] != (self.rows, self.cols):
            raise EngineInputError(
                f"raw frames have shape {frames_adu.shape}; expected (n, {self.rows}, {self.cols})"
            )
        if frames_adu.dtype.kind not in "ui":
            raise EngineInputError(f"raw frames must be integer ADU, got {frames_adu.dtype}")
        nf = frames_adu.shape[0]
        if nf == 0:
            return
        t = min(self._n_threads, nf)
        bounds = np.linspace(0, nf, t + 1).astype(np.int64)
        stats = np.zeros_like(self._stats)
        k.frames_parallel(
            frames_adu, bounds, self._threshold_adu, self._gain, self._offset, self._mask,
            self.rows, self.cols, self._mode, self._lo, self._inv_w, self.binning.n_bins,
            self._thread_hists(t), stats[:t], self._e_over, self._occ, self._pixhits,
        )  # fmt: skip
        self._stats += stats

    def _frame_aligned_bounds(self, frame: np.ndarray) -> np.ndarray:
        n = len(frame)
        t = max(1, min(self._n_threads, n // MIN_EVENTS_PER_CHUNK))
        cuts = [0]
        for i in range(1, t):
            guess = n * i // t
            # first index after guess whose frame differs from frame[guess]: a frame boundary
            j = guess + int(np.searchsorted(frame[guess:], frame[guess], side="right"))
            if cuts[-1] < j < n:
                cuts.append(j)
        cuts.append(n)
        return np.asarray(cuts, dtype=np.int64)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters so far (see :class:`EventHistograms`)."""
        s = self._stats.sum(axis=0)
        sizes = s[k.S_SIZE_HIST : k.S_SIZE_HIST + k.MAX_SIZE_BIN]
        return {
            "frames": int(s[k.S_FRAMES]),
            "frames_with_hits": int(s[k.S_FRAMES_WITH_HITS]),
            "events_in": int(s[k.S_EVENTS_IN]),
            "events_counted": int(s[k.S_COUNTED]),
            "events_out_of_range": int(s[k.S_OUT_OF_RANGE]),
            "events_masked": int(s[k.S_MASKED]),
            "events_dropped": int(s[k.S_DROPPED]),
            "clusters": {
                "1": int(s[k.S_CLUSTERS_1]),
                "2": int(s[k.S_CLUSTERS_2]),
                "3+": int(s[k.S_CLUSTERS_3P]),
            },
            "cluster_size_histogram": {
                (str(i + 1) if i + 1 < k.MAX_SIZE_BIN else f"{k.MAX_SIZE_BIN}+"): int(v)
                for i, v in enumerate(sizes)
            },
            "pixels_masked": int(self._mask.sum()),
            "multi_pixel_clusters_over_energy": int(s[k.S_MULTI_OVER]),
        }

    def frames_by_hits(self, n_frames: int | None = None) -> np.ndarray:
        """``out[k]``: number of frames with ``k`` hit pixels (masked pixels included), k = 0
        .. rows * cols. Event lists hold no frame without hits: give the total ``n_frames``
        and the frames never seen are counted with 0 hits."""
        out = self._occ.sum(axis=0)
        if n_frames is not None:
            seen = int(out.sum())
            if n_frames < seen:
                raise EngineInputError(
                    f"{seen} frames hold hits but the input says it has {n_frames} frames"
                )
            out[0] += n_frames - seen
        return out

    def pixel_hits(self) -> np.ndarray:
        """Hits per pixel (rows, cols), masked pixels included."""
        return self._pixhits.sum(axis=0).reshape(self.rows, self.cols)

    def result(self) -> EventHistograms:
        """The per-pixel histograms (rows, cols, n_bins) uint32 and the counters."""
        if self._hist.shape[0] > 1:
            # merge the per-thread cubes into the first one, in parallel and in place
            k.sum_rows(self._hist, self._hist[0])
            self._hist = self._hist[:1]
        # later blocks go to fresh cubes (_thread_hists), so the cube returned never changes
        self._handed_out = True
        cube = self._hist[0].reshape(self.rows, self.cols, self.binning.n_bins)
        return EventHistograms(self.binning.centres, cube, self.stats)


def histogram_events(
    frame: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    values: np.ndarray,
    *,
    values_are_adu: bool = False,
    charge_sharing: str = "paper",
    bin_width_kev: float = 0.05,
    range_kev: tuple[float, float] = (0.0, 160.0),
    rows: int = 80,
    cols: int = 80,
    gain_kev_per_adu: np.ndarray | None = None,
    offset_kev: np.ndarray | None = None,
    bad_pixels: np.ndarray | None = None,
) -> EventHistograms:
    """Cluster an in-memory HEXITEC event list and histogram it per pixel.

    Parameters
    ----------
    frame, row, col
        (n,) integers, sorted by ``frame``.
    values
        (n,) energy in keV, or ADU with ``values_are_adu`` and a calibration.
    charge_sharing
        ``paper`` (default), ``discriminate``, ``add`` or ``none`` (see module docstring).
    bin_width_kev, range_kev
        Histogram bins; energies outside ``[lo, hi)`` are counted as out of range.
    gain_kev_per_adu, offset_kev
        (rows, cols) calibration, ``E = gain * adu + offset``.
    bad_pixels
        (rows, cols) bool mask of pixels to ignore.

    Returns
    -------
    EventHistograms

    Raises
    ------
    EngineInputError
        Unsorted frames, pixel indices outside the detector, bad options.
    """
    acc = SpectrumAccumulator(
        EnergyBinning(range_kev[0], range_kev[1], bin_width_kev),
        charge_sharing=charge_sharing,
        rows=rows,
        cols=cols,
        gain_kev_per_adu=gain_kev_per_adu,
        offset_kev=offset_kev,
        bad_pixels=bad_pixels,
    )
    acc.add_events(frame, row, col, values, values_are_adu=values_are_adu)
    return acc.result()


def histogram_frames(
    frames_adu: np.ndarray,
    *,
    gain_kev_per_adu: np.ndarray,
    offset_kev: np.ndarray,
    threshold_kev: float,
    charge_sharing: str = "paper",
    bin_width_kev: float = 0.05,
    range_kev: tuple[float, float] = (0.0, 160.0),
    bad_pixels: np.ndarray | None = None,
) -> EventHistograms:
    """Find hits in raw frames, cluster them and histogram per pixel.

    Parameters
    ----------
    frames_adu
        (n_frames, rows, cols) uint16 ADU.
    gain_kev_per_adu, offset_kev
        (rows, cols) calibration, ``E = gain * adu + offset``.
    threshold_kev
        A pixel is hit when its energy is at least this (below it is noise).

    Returns
    -------
    EventHistograms
    """
    frames_adu = np.asarray(frames_adu)
    if frames_adu.ndim != 3:
        raise EngineInputError(f"raw frames must be 3D (n, rows, cols), got {frames_adu.shape}")
    acc = SpectrumAccumulator(
        EnergyBinning(range_kev[0], range_kev[1], bin_width_kev),
        charge_sharing=charge_sharing,
        rows=frames_adu.shape[1],
        cols=frames_adu.shape[2],
        gain_kev_per_adu=gain_kev_per_adu,
        offset_kev=offset_kev,
        bad_pixels=bad_pixels,
        threshold_kev=threshold_kev,
    )
    acc.add_frames(frames_adu)
    return acc.result()
