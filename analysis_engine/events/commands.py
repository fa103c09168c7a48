"""Command line of the event stage: ``events`` (spectra cube) and ``events-calibrate``.

``run_events`` and ``run_events_calibrate`` do the work; the CLI handlers and the platform's
Celery tasks both call them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine import __version__
from analysis_engine.errors import EngineInputError
from analysis_engine.events.calibration import (
    AM241_LINES_KEV,
    fit_calibration,
    refine_gain_on_line,
)
from analysis_engine.events.clustering import (
    CHARGE_SHARING_MODES,
    EnergyBinning,
    SpectrumAccumulator,
)
from analysis_engine.events.diagnostics import (
    DEFAULT_MAX_LINE_KEV,
    DEFAULT_OCCUPANCY_LIMIT,
    occupancy_summary,
    pileup_maps,
)
from analysis_engine.io.hexitec import (
    Calibration,
    HexitecEventReader,
    read_calibration,
    write_calibration,
)
from analysis_engine.io.inputs import hexitec_input_kind, open_frame_reader
from analysis_engine.io.spectra import read_instrument, read_resolution_map, write_spectra
from analysis_engine.parameters import Command, Option

__all__ = ["COMMANDS", "run_events", "run_events_calibrate"]

Progress = Callable[[float, str], None] | None

DEFAULT_RANGE_KEV = (0.0, 160.0)
DEFAULT_BLOCK_EVENTS = 4_000_000
DEFAULT_BLOCK_FRAMES = 8192


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) < 1:
            raise EngineInputError(f"{name} must be a positive whole number, got {value}")


def _instrument(path: str | os.PathLike) -> dict[str, Any] | None:
    """The input's ``/instrument`` attributes (pinhole geometry), carried over to the spectra."""
    try:
        return read_instrument(path)
    except EngineInputError:
        return None


def _resolution(path: str | os.PathLike, rows: int, cols: int) -> np.ndarray | None:
    """The input's per-pixel FWHM map (``/calibration/fwhm_kev``), carried over."""
    try:
        fwhm = read_resolution_map(path)
    except EngineInputError:
        return None
    return fwhm if fwhm is not None and fwhm.shape == (rows, cols) else None


def run_events(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    bin_width_kev: float = 0.05,
    range_kev: tuple[float, float] = DEFAULT_RANGE_KEV,
    charge_sharing: str = "paper",
    calibration_path: str | os.PathLike | None = None,
    gradients_path: str | os.PathLike | None = None,
    intercepts_path: str | os.PathLike | None = None,
    thresholds_path: str | os.PathLike | None = None,
    threshold_kev: float = 5.0,
    block_events: int = DEFAULT_BLOCK_EVENTS,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    occupancy_limit: float = DEFAULT_OCCUPANCY_LIMIT,
    max_line_kev: float | None = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Turn a HEXITEC event list, raw-frame file or raw ``.bin`` stream into per-pixel spectra.

    Streams the input in blocks of whole frames (bounded memory), clusters hits per frame
    (8-connected) with the chosen charge-sharing rule, histograms per pixel and writes
    ``/energy_bins``, ``/pixel_histograms`` (rows, cols, n_bins) uint32 and
    ``/summed_histogram`` atomically.

    Parameters
    ----------
    input_path
        HEXITEC event list (``/events/...``), raw frames (``/raw_frames``) or a raw ``.bin``
        stream as the detector writes it (recognised by content, see ``docs/formats.md``).
    output_path
        Spectra file to write (see :mod:`analysis_engine.io.spectra`).
    bin_width_kev, range_kev
        Histogram bins; energies outside ``[lo, hi)`` are counted, never binned.
    charge_sharing
        ``paper`` (default), ``discriminate``, ``add`` or ``none``.
    calibration_path
        A calibration file (``events-calibrate`` output) that replaces the input's own
        calibration; for event lists already in keV only its bad-pixel mask is used.
    gradients_path, intercepts_path
        ``.bin`` input only (required there): 80 x 80 per-pixel gradient (keV/ADU) and
        intercept (keV) maps, ``.npy`` or whitespace-separated text; non-finite entries mark
        bad pixels, which are masked and counted in ``pixels_bad_calibration``.
    thresholds_path
        ``.bin`` input only: 80 x 80 per-pixel noise threshold in ADU (a pixel is hit when
        its ADU is at least this). Without it, ``threshold_kev`` applies.
    threshold_kev
        ``.bin`` input without ``thresholds_path``: noise threshold in keV.
    block_events, block_frames
        Reading block sizes (events / raw frames).
    occupancy_limit
        Mean occupancy (fraction of pixels hit per frame, 0..1) above which the measurement
        is flagged: charge-sharing correction by clustering needs sparse frames (HEXITEC
        guidance: below about 1-2 %).
    max_line_kev
        Highest line energy of the measurement (keV): a multi-pixel cluster summing above it
        holds more than one photon (pile-up). Default: the beam energy of the input's
        ``/instrument`` group (``incident_energy_kev``), else 115 keV.
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        Summary: ``frames``, ``events_in``, ``events_counted``, ``clusters`` ({"1", "2",
        "3+"}), ``cluster_size_histogram``, ``events_out_of_range``, ``events_masked``,
        ``events_dropped``, ``pixels_masked``, ``input_kind``, ``charge_sharing``,
        ``bin_width_kev``, ``range_kev``, ``n_bins``, and ``diagnostics``: occupancy per frame
        (``occupancy_mean``, ``occupancy_p99``, ``occupancy_max``, ``occupancy_histogram``,
        ``occupancy_limit``, ``occupancy_flagged``, ``frames_over_limit_fraction``), Poisson
        pile-up (``pileup_probability_mean``, ``pileup_probability_max``,
        ``pileup_fraction_of_hits``, ``photons_per_pixel_frame_mean``), multi-pixel clusters
        above ``max_line_kev`` (``multi_pixel_clusters``, ``multi_pixel_over_max_line``,
        ``multi_pixel_over_max_line_fraction``) and ``warning`` (a sentence when flagged).

    Raises
    ------
    EngineInputError
        Broken or inconsistent input, unsorted frames, bad options.
    """
    _check_positive(block_events=block_events, block_frames=block_frames)
    if not (0.0 < occupancy_limit <= 1.0):
        raise EngineInputError(
            f"occupancy_limit is a fraction of pixels per frame in (0, 1], got {occupancy_limit}"
        )
    if max_line_kev is not None and not (np.isfinite(max_line_kev) and max_line_kev > 0):
        raise EngineInputError(f"max_line_kev must be a positive energy, got {max_line_kev}")
    binning = EnergyBinning(float(range_kev[0]), float(range_kev[1]), float(bin_width_kev))
    if charge_sharing not in CHARGE_SHARING_MODES:
        raise EngineInputError(
            f"unknown charge-sharing mode {charge_sharing!r}: expected one of "
            f"{', '.join(CHARGE_SHARING_MODES)}"
        )
    report = progress or (lambda fraction, message: None)
    kind = hexitec_input_kind(input_path)
    override = read_calibration(calibration_path) if calibration_path else None
    instrument = _instrument(input_path)
    if max_line_kev is None:
        beam = (instrument or {}).get("incident_energy_kev")
        max_line_kev = float(beam) if beam is not None else DEFAULT_MAX_LINE_KEV
    extra: dict[str, Any] = {}
    if kind == "events":
        acc, frames, source_cal = _events_pass(
            input_path, binning, charge_sharing, override, block_events, report, max_line_kev
        )
    else:
        reader = open_frame_reader(
            input_path,
            gradients_path=gradients_path,
            intercepts_path=intercepts_path,
            thresholds_path=thresholds_path,
        )
        acc, frames, source_cal, extra = _frames_pass(
            reader,
            binning,
            charge_sharing,
            override,
            block_frames,
            threshold_kev,
            report,
            max_line_kev,
        )
    result = acc.result()
    summary = dict(result.stats)
    summary["frames"] = frames
    summary.update(extra)
    summary.update(
        input_kind=kind,
        charge_sharing=charge_sharing,
        bin_width_kev=binning.bin_width_kev,
        range_kev=[binning.lo_kev, binning.hi_kev],
        n_bins=binning.n_bins,
        calibration=source_cal,
    )
    bad = acc._mask.reshape(acc.rows, acc.cols)
    diag, diag_arrays = _diagnostics(acc, frames, bad, occupancy_limit, max_line_kev)
    summary["diagnostics"] = diag
    if diag["warning"]:
        report(0.96, diag["warning"])
    report(0.97, "writing spectra")
    write_spectra(
        output_path,
        result.energy_bins_kev,
        result.pixel_histograms,
        bad_pixels=bad if bad.any() else None,
        instrument=instrument,
        resolution_fwhm_kev=_resolution(input_path, acc.rows, acc.cols),
        diagnostics={**diag_arrays, **diag},
        attrs={
            "bin_width_kev": binning.bin_width_kev,
            "range_kev": [binning.lo_kev, binning.hi_kev],
            "charge_sharing": charge_sharing,
            "source_file": Path(input_path).name,
            "engine_version": __version__,
            "summary": summary,
        },
    )
    report(1.0, "done")
    return summary


def _diagnostics(acc, frames, bad, occupancy_limit, max_line_kev):
    """Occupancy per frame and pile-up (see :mod:`analysis_engine.events.diagnostics`)."""
    by_hits = acc.frames_by_hits(frames)
    occupancy = occupancy_summary(by_hits, acc.rows * acc.cols, limit=occupancy_limit)
    hit_fraction, p2, pileup = pileup_maps(acc.pixel_hits(), frames, bad_pixels=bad)
    clusters = acc.stats["clusters"]
    multi = clusters["2"] + clusters["3+"]
    over = acc.stats["multi_pixel_clusters_over_energy"]
    warning = None
    if occupancy["occupancy_flagged"]:
        warning = (
            f"mean occupancy {100 * occupancy['occupancy_mean']:.2f} % of pixels per frame "
            f"exceeds {100 * occupancy_limit:g} %: clustering takes neighbouring photons for "
            "one shared photon and pile-up grows; lower the flux or shorten the frame"
        )
    diag = {
        **occupancy,
        **pileup,
        "max_line_kev": float(max_line_kev),
        "multi_pixel_clusters": int(multi),
        "multi_pixel_over_max_line": int(over),
        "multi_pixel_over_max_line_fraction": float(over / multi) if multi else None,
        "warning": warning,
    }
    arrays = {
        "frames_by_hits": by_hits.astype(np.int64),
        "pixel_hit_fraction": hit_fraction.astype(np.float32),
        "pileup_probability": p2.astype(np.float32),
    }
    return diag, arrays


def _events_pass(input_path, binning, charge_sharing, override, block_events, report, max_line_kev):
    with HexitecEventReader(input_path) as reader:
        cal = override or reader.calibration
        source = "file" if reader.calibration is not None else "none"
        if override is not None:
            source = "override"
        if not reader.is_adu:
            source = "bad pixels only" if override is not None else "events in keV"
        elif cal is None:
            raise EngineInputError("ADU events need a calibration")
        use_cal = cal is not None and reader.is_adu
        acc = SpectrumAccumulator(
            binning,
            charge_sharing=charge_sharing,
            rows=reader.rows,
            cols=reader.cols,
            gain_kev_per_adu=_finite(cal.gain_kev_per_adu, 1.0) if use_cal else None,
            offset_kev=_finite(cal.offset_kev, 0.0) if use_cal else None,
            bad_pixels=_bad_pixels(cal),
            pileup_energy_kev=max_line_kev,
        )
        n = max(reader.n_events, 1)
        blocks = _prefetched(reader.blocks(block_events, reuse_buffers=True))
        try:
            for block in blocks:
                acc.add_events(
                    block.frame,
                    block.row,
                    block.col,
                    block.values,
                    values_are_adu=reader.is_adu,
                    index_offset=block.start,
                )
                done = block.start + len(block.frame)
                report(0.95 * done / n, f"{done:,} of {reader.n_events:,} events")
        finally:
            blocks.close()  # stop the prefetch before the file closes
        span = reader.frame_span()
        frames = reader.n_frames
        if frames is None:
            frames = 0 if span is None else span[1] - span[0] + 1
    return acc, frames, source


def _prefetched(blocks: Iterator[Any]) -> Iterator[Any]:
    """Iterate ``blocks`` while a helper thread already reads the next one.

    The numba kernels release the GIL, so reading block i + 1 overlaps processing block i.
    Readers with reused buffers keep a block valid until block i + 2 is requested, which is
    exactly what this one-ahead prefetch needs.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, blocks, None)
        while True:
            item = pending.result()
            if item is None:
                return
            pending = pool.submit(next, blocks, None)
            yield item


def _finite(values: np.ndarray, fill: float) -> np.ndarray:
    """Masked pixels carry NaN calibration; give them a harmless number (they are skipped)."""
    return np.where(np.isfinite(values), values, fill)


def _bad_pixels(cal: Calibration | None) -> np.ndarray | None:
    if cal is None:
        return None
    bad = cal.bad_pixels
    nonfinite = ~(np.isfinite(cal.gain_kev_per_adu) & np.isfinite(cal.offset_kev))
    if bad is None:
        return nonfinite if nonfinite.any() else None
    return bad | nonfinite


def _frames_pass(
    reader, binning, charge_sharing, override, block_frames, threshold_kev, report, max_line_kev
):
    with reader:
        cal = override or reader.calibration
        bad = _bad_pixels(cal)
        gain, offset = _finite(cal.gain_kev_per_adu, 1.0), _finite(cal.offset_kev, 0.0)
        threshold_adu = getattr(reader, "threshold_adu", None)
        threshold = reader.threshold_kev
        if threshold is None and threshold_adu is None:
            threshold = float(threshold_kev)
        acc = SpectrumAccumulator(
            binning,
            charge_sharing=charge_sharing,
            rows=reader.rows,
            cols=reader.cols,
            gain_kev_per_adu=gain,
            offset_kev=offset,
            bad_pixels=bad,
            threshold_kev=threshold,
            threshold_adu=threshold_adu,
            pileup_energy_kev=max_line_kev,
        )
        n = max(reader.n_frames, 1)
        blocks = _prefetched(reader.blocks(block_frames))
        try:
            for start, frames in blocks:
                acc.add_frames(frames)
                done = start + len(frames)
                report(0.95 * done / n, f"{done:,} of {reader.n_frames:,} frames")
        finally:
            blocks.close()
        extra: dict[str, Any] = {}
        native = getattr(reader, "pixel_calibration", None)
        if native is not None:
            extra = {
                "trailing_bytes_ignored": reader.trailing_bytes,
                "pixels_bad_calibration": int(native.bad_pixels.sum()),
                "threshold": "per-pixel ADU" if threshold_adu is not None else threshold,
                "calibration_files": native.sources,
            }
            if reader.trailing_bytes:
                report(0.96, f"ignored a trailing partial frame of {reader.trailing_bytes} bytes")
        source = "override" if override is not None else ("arrays" if native else "file")
        return acc, reader.n_frames, source, extra


def run_events_calibrate(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    lines_kev: tuple[float, ...] = AM241_LINES_KEV,
    refine_line_kev: float | None = None,
    initial_calibration_path: str | os.PathLike | None = None,
    adu_max: int = 8192,
    fwhm_guess_kev: float = 0.8,
    search_kev: float = 3.0,
    block_events: int = DEFAULT_BLOCK_EVENTS,
    progress: Progress = None,
) -> dict[str, Any]:
    """Fit a per-pixel calibration from an ADU event list (e.g. an Am-241 measurement).

    Histograms single-pixel clusters per pixel in ADU (1-ADU bins), finds each named line
    near where the nominal calibration (the file's own, or ``initial_calibration_path``)
    puts it, fits gain and offset per pixel, reports FWHM and masks dead or noisy pixels.
    With ``refine_line_kev`` (e.g. 115 for the elastic line of the data) the lines are not
    refitted: the initial calibration's gain is rescaled per pixel so that line lands on it.

    Parameters
    ----------
    input_path
        HEXITEC event list with ``/events/adu``.
    output_path
        Calibration HDF5 file to write (gain, offset, FWHM and bad-pixel mask per pixel).
    lines_kev
        Known line energies (keV); the first one's width is reported as the FWHM.
    refine_line_kev
        Instead of fitting the lines, rescale the initial gain per pixel so this line (keV,
        e.g. the 115 keV elastic line) lands on it.
    initial_calibration_path
        Nominal calibration file (default: the input's own calibration).
    adu_max
        Upper end of the ADU histogram (1-ADU bins from 0).
    fwhm_guess_kev
        Starting FWHM (keV) of the line fits.
    search_kev
        Half-width (keV) of the window around each nominal line position searched for it.
    block_events
        Reading block size (events).
    progress
        Optional ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``pixels``, ``pixels_masked`` and the other counts of
        :class:`~analysis_engine.events.calibration.CalibrationFit`, medians of gain, offset
        and FWHM, ``events_in``.
    """
    _check_positive(adu_max=adu_max, block_events=block_events)
    report = progress or (lambda fraction, message: None)
    # 1-ADU bins centred on the integer ADU values, so fitted peak positions are unbiased
    binning = EnergyBinning(-0.5, float(adu_max) - 0.5, 1.0)
    with HexitecEventReader(input_path) as reader:
        if not reader.is_adu:
            raise EngineInputError(
                f"{Path(input_path).name} holds energies in keV; calibration needs /events/adu"
            )
        nominal = (
            read_calibration(initial_calibration_path, rows=reader.rows, cols=reader.cols)
            if initial_calibration_path
            else reader.calibration
        )
        acc = SpectrumAccumulator(
            binning, charge_sharing="discriminate", rows=reader.rows, cols=reader.cols
        )
        n = max(reader.n_events, 1)
        for block in reader.blocks(block_events):
            acc.add_events(
                block.frame, block.row, block.col, block.values, values_are_adu=True,
                index_offset=block.start,
            )  # fmt: skip
            report(0.8 * (block.start + len(block.frame)) / n, "histogramming ADU")
    result = acc.result()
    report(0.85, "fitting peaks")
    gain0 = np.where(np.isfinite(nominal.gain_kev_per_adu), nominal.gain_kev_per_adu, np.nan)
    fill_gain = float(np.nanmedian(gain0))
    fill_offset = float(np.nanmedian(nominal.offset_kev))
    gain0 = np.where(np.isfinite(gain0), gain0, fill_gain)
    offset0 = np.where(np.isfinite(nominal.offset_kev), nominal.offset_kev, fill_offset)
    summary: dict[str, Any] = {"events_in": result.stats["events_in"]}
    if refine_line_kev is not None:
        gain, fit = refine_gain_on_line(
            result.energy_bins_kev,
            result.pixel_histograms,
            gain_kev_per_adu=nominal.gain_kev_per_adu,
            offset_kev=nominal.offset_kev,
            line_kev=float(refine_line_kev),
            fwhm_guess_kev=fwhm_guess_kev,
        )
        bad = (nominal.bad_pixels if nominal.bad_pixels is not None else ~np.isfinite(gain)) | (
            ~fit.ok
        )
        cal = Calibration(gain, nominal.offset_kev, bad, nominal.fwhm_kev)
        summary.update(
            refined_on_kev=float(refine_line_kev),
            pixels_refined=int((fit.ok & ~bad).sum()),
            median_gain_change=float(np.nanmedian(gain / nominal.gain_kev_per_adu - 1.0)),
            pixels_masked=int(bad.sum()),
        )
    else:
        fit = fit_calibration(
            result.energy_bins_kev,
            result.pixel_histograms,
            lines_kev=tuple(lines_kev),
            nominal_gain_kev_per_adu=gain0,
            nominal_offset_kev=offset0,
            search_kev=search_kev,
            fwhm_guess_kev=fwhm_guess_kev,
        )
        cal = Calibration(fit.gain_kev_per_adu, fit.offset_kev, fit.bad_pixels, fit.fwhm_kev)
        summary.update(fit.summary)
    summary["pixels"] = int(cal.gain_kev_per_adu.size)
    write_calibration(
        output_path,
        cal,
        attrs={"source_file": Path(input_path).name, "engine_version": __version__, **{
            k: v for k, v in summary.items() if not isinstance(v, dict)}},
    )  # fmt: skip
    report(1.0, "done")
    return summary


# --------------------------------------------------------------------------- CLI

COMMANDS = (
    Command(
        "events",
        run_events,
        inputs=("input_path",),
        options={
            "charge_sharing": Option(choices=CHARGE_SHARING_MODES),
            # the flags the issue and docs/formats.md give for .bin calibration arrays
            "gradients_path": Option(aliases=("--gradients",)),
            "intercepts_path": Option(aliases=("--intercepts",)),
            "thresholds_path": Option(aliases=("--thresholds",)),
        },
    ),
    Command("events-calibrate", run_events_calibrate, inputs=("input_path",)),
)
