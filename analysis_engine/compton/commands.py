"""The ``compton`` command: per-pixel spectra to S-parameter and Li stoichiometry maps.

``python -m analysis_engine compton IN.h5 -o OUT.h5 [--incident-kev 115] [--angle-deg 90]
[--calibration A,B] [--attenuation F] [--mask FILE]`` (see docs/formats.md). The work is done by
:func:`run_compton`, which the platform's Celery task calls as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from analysis_engine.compton.calibration import (
    DEFAULT_CALIBRATION,
    LinearCalibration,
    calibration_from_mapping,
    fit_calibration,
    parse_calibration,
)
from analysis_engine.compton.corrected import (
    DEFAULT_BACKGROUND_BAND_AU,
    DEFAULT_REFERENCE_FWHM_KEV,
    FLAG_RESOLUTION,
    corrected_s_parameter,
    find_bad_pixels,
)
from analysis_engine.compton.geometry import (
    GEOMETRY_KEYS,
    InstrumentGeometry,
    geometry_from_mapping,
    pixel_angles_deg,
)
from analysis_engine.compton.kinematics import (
    ELECTRON_REST_ENERGY_KEV,
    compton_energy_kev,
    energy_from_pz,
)
from analysis_engine.compton.matrix import DEFAULT_COMPOSITION, CellComposition, matrix_model
from analysis_engine.compton.peakfit import fit_compton_peaks
from analysis_engine.compton.profile import (
    DEFAULT_HIGH_WINDOW_AU,
    DEFAULT_LOW_WINDOW_AU,
    FLAG_DESCRIPTIONS,
    FLAG_OUTSIDE_MASK,
    compton_profile,
    s_parameter,
)
from analysis_engine.errors import EngineInputError
from analysis_engine.parameters import Command

__all__ = ["COMMANDS", "run_compton", "run_compton_calibrate", "run_compton_calibrate_spectra"]

Progress = Callable[[float, str], None]


def _composition(composition: Any, porosity_given: bool) -> CellComposition:
    if composition is None:
        return DEFAULT_COMPOSITION
    if not porosity_given:
        raise EngineInputError(
            "composition applies to the electrolyte/binder correction: give a porosity map too"
        )
    try:
        ratios = [float(v) for v in composition]
    except (TypeError, ValueError):
        raise EngineInputError(
            f"composition must be three weight ratios NMC, carbon, binder (e.g. 90 5 5), "
            f"got {composition!r}"
        ) from None
    if len(ratios) != 3 or min(ratios) < 0 or not np.isfinite(ratios).all() or sum(ratios) <= 0:
        raise EngineInputError(
            f"composition must be three weight ratios NMC, carbon, binder >= 0 (e.g. 90 5 5), "
            f"got {composition!r}"
        )
    total = sum(ratios)
    return CellComposition(*(r / total for r in ratios))


def _mask_array(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    if isinstance(mask, str | os.PathLike):
        from analysis_engine.io.common import read_array

        mask = read_array(mask)
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != shape:
        raise EngineInputError(
            f"mask has shape {arr.shape} but the spectra have {shape[0]} x {shape[1]} pixels; "
            "expected a 2D mask on the Compton pixel grid (nonzero = inside)"
        )
    if arr.dtype.kind in "fc":
        return np.isfinite(arr) & (arr != 0)  # NaN (no value) is outside
    return arr != 0


def _as_calibration(calibration: Any) -> LinearCalibration:
    if calibration is None:
        return DEFAULT_CALIBRATION
    if isinstance(calibration, LinearCalibration):
        return calibration
    if isinstance(calibration, str | os.PathLike) and str(calibration).endswith(".json"):
        from analysis_engine.io.common import read_json

        data = read_json(calibration, what="calibration file")
        return calibration_from_mapping(
            data.get("calibration", data) if isinstance(data, dict) else {}
        )
    if isinstance(calibration, str):
        return parse_calibration(calibration)
    try:
        a, b = (float(v) for v in calibration)
    except (TypeError, ValueError):
        raise EngineInputError(
            "calibration must be (intercept, slope) of S = A + B (1 - x)"
        ) from None
    return LinearCalibration(a, b)


def _geometry(geometry: Any, input_path: Any, incident_kev: float, angle_deg: float):
    """The pinhole geometry: given, else the file's /instrument group, else none (one angle)."""
    from analysis_engine.io.common import read_json
    from analysis_engine.io.spectra import read_instrument

    if isinstance(geometry, InstrumentGeometry):
        return geometry, "given"
    if isinstance(geometry, dict):
        return geometry_from_mapping(geometry), "given"
    if isinstance(geometry, str | os.PathLike):
        return geometry_from_mapping(read_json(geometry, what="geometry file")), str(geometry)
    try:
        attrs = read_instrument(input_path)
    except EngineInputError:  # not HDF5 (e.g. .hxt): no /instrument group
        attrs = None
    if attrs and any(k in attrs for k in GEOMETRY_KEYS):
        return geometry_from_mapping(
            {k: v for k, v in attrs.items() if k in GEOMETRY_KEYS}
        ), "/instrument of the spectra file"
    return None, f"single angle {angle_deg:g} deg at {incident_kev:g} keV"


def _pixel_map(value: Any, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        from analysis_engine.io.common import read_array

        value = read_array(value)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != shape:
        raise EngineInputError(
            f"{what} has shape {arr.shape} but the spectra have {shape[0]} x {shape[1]} pixels"
        )
    return arr


def _background(background: Any, n_bins: int) -> Any:
    if background is None or (isinstance(background, str) and background in ("fit", "none")):
        return background or "none"
    if isinstance(background, str | os.PathLike):
        from analysis_engine.io.common import read_array

        background = read_array(background)
    arr = np.asarray(background, dtype=np.float64).ravel()
    if arr.size != n_bins:
        raise EngineInputError(
            f"background spectrum has {arr.size} bins but the spectra have {n_bins}"
        )
    return arr


def run_compton(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    geometry: str | os.PathLike | dict | InstrumentGeometry | None = None,
    background: str | os.PathLike | np.ndarray | None = "fit",
    background_band_au: tuple[float, float] = DEFAULT_BACKGROUND_BAND_AU,
    tail_profile: str = "nmc811",
    resolution_fwhm: str | os.PathLike | np.ndarray | None = None,
    reference_fwhm_kev: float | None = DEFAULT_REFERENCE_FWHM_KEV,
    porosity: str | os.PathLike | np.ndarray | None = None,
    composition: tuple[float, ...] | None = None,
    calibration: LinearCalibration | tuple[float, float] | str | None = None,
    calibration_points: str | Sequence[tuple[float, float]] | None = None,
    attenuation: float = 1.0,
    mask: str | os.PathLike | np.ndarray | None = None,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    klein_nishina: bool = False,
    min_counts: float = 100.0,
    fit_peaks: bool = True,
    eta: float | None = None,
    energy_scale_sigma_kev: float = 0.05,
    resolution_sigma_fraction: float = 0.05,
    refine_energy_scale: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """S-parameter, Li stoichiometry and Compton peak maps from per-pixel spectra.

    Parameters
    ----------
    input_path : path
        Spectra as written by ``events`` (``/energy_bins``, ``/pixel_histograms``) or a
        HEXITEC ``.hxt`` v3 file (recognised by content, see docs/formats.md).
    output_path : path
        HDF5 file to write (atomically): ``/s_parameter``, ``/s_parameter_sigma``,
        ``/li_stoichiometry``, ``/li_stoichiometry_sigma`` (counting + calibration),
        ``/peak_center_kev``, ``/peak_fwhm_kev`` (+ ``_sigma``), ``/peak_area``,
        ``/compton_counts``, ``/flags`` (rows x cols, NaN outside the mask or where flagged),
        ``/mask``, ``/bad_pixels``, ``/angle_deg`` and ``/line_energy_kev`` (per pixel),
        ``/background_per_kev`` and ``/background_low``, ``/background_high`` (counts
        subtracted per window), ``/s_uncorrected_resolution`` and ``/resolution_fwhm_kev``
        (when a FWHM map is given), ``/s_measured`` and ``/non_cathode_fraction`` (when a
        porosity map is given), ``/profile/pz_au``, ``/profile/j``, ``/profile/j_sigma``
        (J(p_z) of the in-mask pixels, each on its own p_z scale, area 1 over |p_z| < 5 a.u.),
        ``/summed_spectrum``, ``/energy_bins``, ``/energy_offset_kev`` (with
        ``refine_energy_scale``).
    incident_kev, angle_deg : float
        Beam energy (keV) and scattering angle (deg) for Eq. 6 when no geometry is known.
    geometry : path to a JSON file, dict or None
        Pinhole geometry (keys ``incident_energy_kev``, ``scattering_angle_deg``,
        ``sample_to_pinhole_mm``, ``pinhole_to_detector_mm``, ``pixel_pitch_mm``,
        ``beam_axis``): per-pixel angle, line energy, p_z scale and windows. Default: the
        ``/instrument`` group of the spectra file, else one angle for every pixel.
    background : "fit", "none", or a measured background spectrum (path or array)
        Background under the peak: a line fitted per pixel in the side bands (default), none,
        or a measured spectrum scaled to each pixel's side bands.
    background_band_au : (float, float)
        ``|p_z|`` range of the background side bands, atomic units.
    tail_profile : {"nmc811", "none"}
        Profile whose tails in the side bands belong to the sample (not background) in the
        background fit; "none" treats everything in the bands as background.
    resolution_fwhm : path or array, optional
        Detector FWHM per pixel at the Compton line (keV, rows x cols, NaN = unknown); S is
        brought to the common ``reference_fwhm_kev``.
    reference_fwhm_kev : float, optional
        Common resolution S refers to (keV at the middle angle; default 1.1 keV); None: the
        broadest pixel. Maps and calibrations must use the same value.
    porosity : path or array, optional
        Non-solid volume fraction per pixel (rows x cols, 0..1): the pores plus any
        electrolyte beside the electrode in the pixel's column, e.g. correlate's registered
        ``/region_<k>/non_solid_fraction``. S is corrected for electrolyte, carbon and binder
        scatter (free-atom model, docs/compton_corrections.md).
    composition : (nmc, carbon, binder) weight ratios, optional
        Solid composition of the cathode for the porosity correction, e.g. ``90 5 5`` (scaled
        to sum to 1); default the paper's slurry, 90 : 5 : 5. Needs ``porosity``.
    calibration : LinearCalibration, (A, B), "A,B", a calibration JSON path or None
        ``S = A + B (1 - x)``; default the paper's Table 2 fit, 0.650 + 2.309 (1 - x). A
        ``.json`` path reads a calibration written by ``compton-calibrate``.
    calibration_points : "S:1-x,..." or sequence of (S, 1 - x), optional
        Fit the calibration line through these points instead of giving it, e.g.
        ``0.88:0.10,2.40:0.76`` (not together with ``calibration``).
    attenuation : float
        Per-region attenuation correction factor multiplying S (paper: 1.015, 1.010, 1.005
        for regions 1-3) before calibration.
    mask : path spec, array or None
        (rows, cols) region mask, nonzero inside, NaN outside (e.g. the registered XCT cathode
        footprint of one depth region, ``correlation.h5:/region_<k>/cathode_mask`` written by
        ``correlate``); any ``read_array`` spec. Pixels outside are NaN in every map and left
        out of the summed spectrum, J(p_z), S and Li of the region. Default: every pixel. Bad
        pixels (the file's ``/bad_pixels``, dead and noisy ones) are always excluded.
    low_window_au, high_window_au : (float, float)
        ``|p_z|`` windows of S_L and S_H (Eqs. 8-9).
    klein_nishina : bool
        Correct counts by the relative Klein-Nishina factor (Eq. 5); only without geometry,
        background and resolution corrections.
    min_counts : float
        Pixels with fewer counts in the S windows are flagged and NaN (the peak fit uses
        twice this in its +-6 keV window).
    fit_peaks : bool
        Fit the pseudo-Voigt per pixel (centre/FWHM maps); skip for speed.
    eta : float, optional
        Fixed Lorentz fraction for the peak fits; default fitted on the summed spectrum.
    energy_scale_sigma_kev : float
        Standard error of the per-pixel energy calibration, for the uncertainty budget.
    resolution_sigma_fraction : float
        Relative standard error of the FWHM map, for the uncertainty budget.
    refine_energy_scale : bool
        Refine each pixel's energy scale from its fitted peak centre: the offset of the
        pseudo-Voigt centre from the pixel's Compton line energy (Eq. 6 at its angle; the
        centre of a symmetric J(p_z) sits within 0.004 keV of it) moves that pixel's windows,
        side bands and p_z scale (``/energy_offset_kev``). Pixels whose fit failed take the
        median offset. Needs ``fit_peaks``; not with ``klein_nishina``.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        Summary: ``s_total`` (S_L / S_H summed over valid in-mask pixels), ``s_total_sigma``,
        ``li_total``, ``li_total_sigma``, ``uncertainty_budget`` (sigma of li_total from
        counting, calibration, energy scale and resolution), ``mask`` (``given``: whether a
        mask was given, ``pixels_inside``: its pixels), ``s_mean``, ``s_std``,
        ``li_mean``, ``li_std``, ``pixels``, ``pixels_valid``, ``pixels_flagged``,
        ``pixels_bad``, ``counts_total``, ``peak_center_kev``, ``peak_fwhm_kev``,
        ``calibration`` (with ``is_default``), ``geometry``, ``background``,
        ``resolution_correction``, ``energy_scale`` (``refined``; with refinement the mean and
        spread of the offsets and the pixels that took the median), ``matrix_correction``
        (None without a porosity map; else the model's window fractions, the composition,
        ``li_total_measured`` before the correction and ``delta_li``, its change of
        ``li_total``), ``attenuation``, windows.

    Raises
    ------
    EngineInputError
        Missing energy axis, energy range not covering the windows at some pixel's angle,
        negative counts, no counts in the mask, a zero-slope calibration, bad geometry, mask,
        porosity or FWHM map, or bad options.
    """
    from analysis_engine.io.common import write_hdf5
    from analysis_engine.io.inputs import read_any_spectra

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    if not (np.isfinite(attenuation) and attenuation > 0):
        raise EngineInputError(f"attenuation correction factor must be > 0, got {attenuation}")
    if not (0.0 < angle_deg <= 180.0) or not (incident_kev > 0):
        raise EngineInputError(
            f"need incident energy > 0 keV and 0 < angle <= 180 deg, got {incident_kev} keV, "
            f"{angle_deg} deg"
        )
    if calibration is not None and calibration_points is not None:
        raise EngineInputError("give either a calibration line or calibration points, not both")
    if calibration_points is not None:
        calib = _calibration_points(calibration_points)
    else:
        calib = _as_calibration(calibration)
    windows = {"low_window_au": tuple(low_window_au), "high_window_au": tuple(high_window_au)}

    report(0.0, "reading spectra")
    geo, geo_source = _geometry(geometry, input_path, incident_kev, angle_deg)
    energy, cube, attrs = read_any_spectra(input_path)
    rows, cols, n_bins = cube.shape
    if geo is not None:
        incident_kev = geo.incident_energy_kev
        angle_deg = geo.scattering_angle_deg
        angles = pixel_angles_deg(geo, (rows, cols))
    else:
        angles = np.full((rows, cols), float(angle_deg))
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    inside = _mask_array(mask, (rows, cols))
    mask_info = {"given": mask is not None, "pixels_inside": int(inside.sum())}
    fwhm_map = _pixel_map(resolution_fwhm, (rows, cols), "resolution (FWHM) map")
    fwhm_source = "given" if fwhm_map is not None else None
    if fwhm_map is None and isinstance(attrs.get("resolution_fwhm_kev"), np.ndarray):
        fwhm_map = _pixel_map(attrs["resolution_fwhm_kev"], (rows, cols), "resolution map")
        fwhm_source = "/resolution_fwhm_kev of the spectra file"
    porosity_map = _pixel_map(porosity, (rows, cols), "porosity map")
    if porosity_map is not None and np.any(
        (porosity_map[np.isfinite(porosity_map)] < 0)
        | (porosity_map[np.isfinite(porosity_map)] > 1)
    ):
        raise EngineInputError("porosity map values must be pore fractions within 0..1")
    cell_composition = _composition(composition, porosity_map is not None)
    bg = _background(background, n_bins)
    corrections_on = geo is not None or not (isinstance(bg, str) and bg == "none")
    if klein_nishina and (corrections_on or fwhm_map is not None):
        raise EngineInputError(
            "klein_nishina applies to uncorrected spectra only; use it with background='none' "
            "and no geometry"
        )
    if refine_energy_scale and (klein_nishina or not fit_peaks):
        raise EngineInputError(
            "refine_energy_scale needs the per-pixel peak fits (fit_peaks) and does not apply "
            "with klein_nishina"
        )
    bad = find_bad_pixels(cube.sum(axis=2, dtype=np.float64))
    file_bad = attrs.get("bad_pixels")
    if isinstance(file_bad, np.ndarray) and file_bad.shape == bad.shape:
        bad |= file_bad
    inside &= ~bad
    if not inside.any():
        raise EngineInputError(
            "the mask selects no usable pixels: all are outside it, dead (zero counts) or bad"
        )

    line_map = np.where(
        np.isfinite(angles),
        incident_kev
        / (1 + incident_kev / ELECTRON_REST_ENERGY_KEV * (1 - np.cos(np.deg2rad(angles)))),
        np.nan,
    )
    fits = None
    offset_map = None
    energy_scale: dict[str, Any] = {"refined": False}
    if refine_energy_scale:
        report(0.1, f"fitting the Compton peak in {int(inside.sum())} pixels (energy scale)")
        fits = fit_compton_peaks(cube[inside], energy, eta=eta, min_counts=2.0 * min_counts, **kw)
        delta = fits.center_kev - line_map[inside]
        ok = (fits.flags == 0) & np.isfinite(delta)
        fallback = float(np.median(delta[ok])) if ok.any() else 0.0
        offset_map = np.zeros((rows, cols))
        offset_map[inside] = np.where(ok, delta, fallback)
        energy_scale = {
            "refined": True,
            "offset_mean_kev": float(np.mean(offset_map[inside])),
            "offset_std_kev": float(np.std(offset_map[inside])),
            "pixels_median_offset": int(np.count_nonzero(~ok)),
        }

    report(0.15, "S-parameter per pixel")
    corr = {
        "incident_kev": incident_kev,
        "background": bg,
        "background_band_au": tuple(background_band_au),
        "tail_profile": tail_profile,
        "bad_pixels": bad,
        **windows,
    }

    def s_maps(energy_axis: np.ndarray, fwhm: np.ndarray | None):
        return corrected_s_parameter(
            cube,
            energy_axis,
            angle_deg=angles,
            resolution_fwhm_kev=fwhm,
            reference_fwhm_kev=reference_fwhm_kev,
            min_counts=min_counts,
            energy_offset_kev=offset_map,
            **corr,
        )

    if klein_nishina:
        plain = s_parameter(
            cube, energy, klein_nishina=True, min_counts=min_counts, **windows, **kw
        )
        smap = None
        low_i, high_i, s_raw, counts_w = (
            plain.low_integral,
            plain.high_integral,
            plain.s,
            plain.window_counts,
        )
        flags = plain.flags.copy()
    else:
        smap = s_maps(energy, fwhm_map)
        low_i, high_i, s_raw, counts_w = (
            smap.low_integral,
            smap.high_integral,
            smap.s,
            smap.window_counts,
        )
        flags = smap.flags.copy()
    if not np.any(counts_w[inside] > 0):
        raise EngineInputError(
            "all pixels in the mask have zero counts in the Compton windows "
            f"({energy_from_pz(-high_window_au[1], **kw):.2f}-"
            f"{energy_from_pz(high_window_au[1], **kw):.2f} keV): nothing to analyse"
        )
    s_pixel = s_raw
    non_cathode = None
    matrix_info: dict[str, Any] | None = None
    if porosity_map is not None:
        model = matrix_model(
            composition=cell_composition,
            resolution_fwhm_kev=float(smap.reference_fwhm_kev)
            if smap is not None and smap.reference_fwhm_kev
            else 0.8,
            **kw,
            **windows,
        )
        phi = np.where(np.isfinite(porosity_map), porosity_map, 0.0)
        s_pixel, non_cathode = model.cathode_s(low_i, high_i, phi)
        s_pixel = np.where(np.isfinite(s_raw), s_pixel, np.nan)
        matrix_info = {
            **model.as_dict(),
            "model": "free-atom (xraylib) electron-weighted",
            "composition_nmc_carbon_binder": [
                cell_composition.nmc_weight_fraction,
                cell_composition.carbon_weight_fraction,
                cell_composition.binder_weight_fraction,
            ],
            "composition_source": "given" if composition is not None else "default 90:5:5",
        }

    valid = inside & np.isfinite(s_pixel)
    flags[~inside] |= FLAG_OUTSIDE_MASK
    rel_sigma = smap.s_sigma / smap.s if smap is not None else plain.s_sigma / plain.s
    s_map = np.where(inside, s_pixel, np.nan) * attenuation
    s_sigma = np.abs(s_map) * np.where(inside, rel_sigma, np.nan)
    li_map = calib.stoichiometry(s_map)
    li_sigma = np.sqrt(
        calib.stoichiometry_sigma(s_sigma) ** 2 + calib.stoichiometry_calibration_sigma(s_map) ** 2
    )
    counts_map = np.where(inside, counts_w, np.nan)

    def region_s(lo_map: np.ndarray, hi_map: np.ndarray) -> float:
        a, b = float(np.sum(lo_map[valid])), float(np.sum(hi_map[valid]))
        if porosity_map is not None:
            phi_mean = float(np.average(phi[valid], weights=np.maximum(counts_w[valid], 1e-9)))
            return float(model.cathode_s(a, b, phi_mean)[0]) * attenuation
        return a / b * attenuation

    if not valid.any():
        raise EngineInputError("no pixel in the mask has enough counts for an S-parameter")
    s_total = region_s(low_i, high_i)
    rel_total = np.sqrt(
        1.0 / max(float(np.sum(low_i[valid])), 1e-300)
        + 1.0 / max(float(np.sum(high_i[valid])), 1e-300)
    )
    s_total_sigma = s_total * rel_total

    # uncertainty budget of li_total: each term as a standard deviation of (1 - x)
    budget: dict[str, float] = {
        "counting": float(calib.stoichiometry_sigma(s_total_sigma)),
        "calibration": float(calib.stoichiometry_calibration_sigma(s_total)),
        "energy_scale": 0.0,
        "resolution": 0.0,
    }
    if smap is not None:
        report(0.25, "uncertainty budget: energy scale and resolution")
        shifted = [
            s_maps(energy + d, fwhm_map) for d in (energy_scale_sigma_kev, -energy_scale_sigma_kev)
        ]
        budget["energy_scale"] = float(
            abs(
                region_s(shifted[0].low_integral, shifted[0].high_integral)
                - region_s(shifted[1].low_integral, shifted[1].high_integral)
            )
            / 2
            / abs(calib.slope)
        )
        if fwhm_map is not None:
            scaled = [
                s_maps(energy, fwhm_map * (1 + d))
                for d in (resolution_sigma_fraction, -resolution_sigma_fraction)
            ]
            budget["resolution"] = float(
                abs(
                    region_s(scaled[0].low_integral, scaled[0].high_integral)
                    - region_s(scaled[1].low_integral, scaled[1].high_integral)
                )
                / 2
                / abs(calib.slope)
            )
    li_total_sigma = float(np.sqrt(sum(v**2 for v in budget.values())))

    summed = cube[inside].sum(axis=0, dtype=np.float64)
    profile = _region_profile(cube, energy, inside, angles, incident_kev, high_window_au)
    datasets: dict[str, Any] = {
        "/s_parameter": s_map.astype(np.float32),
        "/s_parameter_sigma": s_sigma.astype(np.float32),
        "/li_stoichiometry": li_map.astype(np.float32),
        "/li_stoichiometry_sigma": li_sigma.astype(np.float32),
        "/compton_counts": counts_map.astype(np.float32),
        "/mask": inside.astype(np.uint8),
        "/bad_pixels": bad.astype(np.uint8),
        "/angle_deg": angles.astype(np.float32),
        "/line_energy_kev": line_map.astype(np.float32),
        "/profile/pz_au": profile[0],
        "/profile/j": profile[1],
        "/profile/j_sigma": profile[2],
        "/summed_spectrum": summed,
        "/energy_bins": energy,
    }
    if smap is not None:
        datasets["/background_per_kev"] = np.where(inside, smap.background_per_kev, np.nan).astype(
            np.float32
        )
        datasets["/background_low"] = np.where(inside, smap.background_low, np.nan).astype(
            np.float32
        )
        datasets["/background_high"] = np.where(inside, smap.background_high, np.nan).astype(
            np.float32
        )
    resolution_info: dict[str, Any] | None = None
    if fwhm_map is not None and smap is not None:
        datasets["/resolution_fwhm_kev"] = fwhm_map.astype(np.float32)
        datasets["/s_uncorrected_resolution"] = (
            np.where(inside, smap.s_uncorrected_resolution, np.nan) * attenuation
        ).astype(np.float32)
        change = (smap.s - smap.s_uncorrected_resolution)[valid] / smap.s_uncorrected_resolution[
            valid
        ]
        resolution_info = {
            "source": fwhm_source,
            "reference_fwhm_kev": smap.reference_fwhm_kev,
            "fwhm_mean_kev": float(np.nanmean(fwhm_map[inside])),
            "fwhm_std_kev": float(np.nanstd(fwhm_map[inside])),
            "s_change_mean_pct": float(100 * np.nanmean(change)) if change.size else None,
            "s_change_std_pct": float(100 * np.nanstd(change)) if change.size else None,
            "pixels_too_broad": int(np.count_nonzero(flags[inside] & FLAG_RESOLUTION)),
        }
    if offset_map is not None:
        datasets["/energy_offset_kev"] = np.where(inside, offset_map, np.nan).astype(np.float32)
    if non_cathode is not None:
        datasets["/s_measured"] = (np.where(inside, s_raw, np.nan) * attenuation).astype(np.float32)
        datasets["/non_cathode_fraction"] = np.where(inside, non_cathode, np.nan).astype(np.float32)
    peak_summary: dict[str, float | None] = {"peak_center_kev": None, "peak_fwhm_kev": None}
    nan_map = np.full((rows, cols), np.nan, dtype=np.float32)
    if fit_peaks:
        report(0.35, f"fitting the Compton peak in {int(inside.sum())} pixels")
        single = fit_compton_peaks(summed, energy, eta=eta, min_counts=1.0, **kw)
        if single.flags == 0:
            peak_summary = {
                "peak_center_kev": float(single.center_kev),
                "peak_fwhm_kev": float(single.fwhm_kev),
                "peak_eta": float(single.eta),
            }
        if fits is None:
            fits = fit_compton_peaks(
                cube[inside], energy, eta=eta, min_counts=2.0 * min_counts, **kw
            )
        for name, values in (
            ("/peak_center_kev", fits.center_kev),
            ("/peak_center_sigma_kev", fits.center_sigma_kev),
            ("/peak_fwhm_kev", fits.fwhm_kev),
            ("/peak_fwhm_sigma_kev", fits.fwhm_sigma_kev),
            ("/peak_area", fits.area),
            ("/peak_area_sigma", fits.area_sigma),
        ):
            full = nan_map.copy()
            full[inside] = values
            datasets[name] = full
        flags[inside] |= fits.flags
    else:
        datasets["/peak_center_kev"] = nan_map
        datasets["/peak_fwhm_kev"] = nan_map
    datasets["/flags"] = flags

    li_total = float(calib.stoichiometry(s_total))
    if matrix_info is not None:
        # the correction's size: the region's S and Li without it (same pixels, same sums)
        s_measured = float(np.sum(low_i[valid]) / np.sum(high_i[valid])) * attenuation
        matrix_info["s_total_measured"] = s_measured
        matrix_info["li_total_measured"] = float(calib.stoichiometry(s_measured))
        matrix_info["delta_li"] = li_total - matrix_info["li_total_measured"]
        matrix_info["non_cathode_fraction_mean"] = float(np.mean(non_cathode[valid]))
    summary: dict[str, Any] = {
        "s_total": s_total,
        "s_total_sigma": s_total_sigma,
        "li_total": li_total,
        "li_total_sigma": li_total_sigma,
        "uncertainty_budget": budget,
        "s_mean": float(np.mean(s_map[valid])),
        "s_std": float(np.std(s_map[valid])),
        "li_mean": float(np.mean(li_map[valid])),
        "li_std": float(np.std(li_map[valid])),
        "mask": mask_info,
        "pixels": int(inside.sum()),
        "pixels_valid": int(valid.sum()),
        "pixels_flagged": int(np.count_nonzero(flags[inside])),
        "pixels_bad": int(bad.sum()),
        "counts_total": float(np.nansum(counts_map)),
        **peak_summary,
        "calibration": {
            **calib.as_dict(),
            "is_default": calib is DEFAULT_CALIBRATION,
        },
        "geometry": {**(geo.as_dict() if geo is not None else {}), "source": geo_source},
        "angle_range_deg": [float(np.min(angles)), float(np.max(angles))],
        "background": {
            "mode": bg if isinstance(bg, str) else "measured",
            "band_au": list(background_band_au),
            "counts_low": float(np.sum(smap.background_low[valid])) if smap is not None else 0.0,
            "counts_high": float(np.sum(smap.background_high[valid])) if smap is not None else 0.0,
        },
        "resolution_correction": resolution_info,
        "energy_scale": energy_scale,
        "matrix_correction": matrix_info,
        "attenuation": float(attenuation),
        "incident_kev": float(incident_kev),
        "angle_deg": float(angle_deg),
        "compton_line_kev": compton_energy_kev(incident_kev, angle_deg),
        "low_window_au": list(low_window_au),
        "high_window_au": list(high_window_au),
        "klein_nishina": bool(klein_nishina),
    }
    report(0.9, "writing results")
    write_hdf5(
        output_path,
        datasets,
        attrs={
            "/": {
                **{k: v for k, v in summary.items() if v is not None},
                "s_definition": "S_L/S_H per pixel on its own p_z scale (pinhole geometry), "
                "background subtracted, at the reference resolution when a FWHM map is given, "
                "times the attenuation factor",
                "flag_bits": {str(k): v for k, v in FLAG_DESCRIPTIONS.items()},
                "source_file": os.path.basename(str(input_path)),
            }
        },
    )
    report(1.0, "done")
    return summary


def _region_profile(cube, energy, inside, angles, incident_kev, high_window_au):
    """J(p_z) of the in-mask pixels: each angle group on its own p_z scale, summed on one grid."""
    keys = np.round(angles, 9)
    groups = np.unique(keys[inside])
    mid = float(np.median(groups))
    ref = compton_profile(
        cube[inside & (keys == groups[np.argmin(np.abs(groups - mid))])].sum(
            axis=0, dtype=np.float64
        ),
        energy,
        incident_kev=incident_kev,
        angle_deg=float(groups[np.argmin(np.abs(groups - mid))]),
        high_window_au=high_window_au,
        normalise=False,
    )
    grid = ref.pz_au
    j = np.zeros_like(grid)
    var = np.zeros_like(grid)
    for angle in groups:
        summed = cube[inside & (keys == angle)].sum(axis=0, dtype=np.float64)
        prof = compton_profile(
            summed,
            energy,
            incident_kev=incident_kev,
            angle_deg=float(angle),
            high_window_au=high_window_au,
            normalise=False,
        )
        j += np.interp(grid, prof.pz_au, prof.j, left=0.0, right=0.0)
        var += np.interp(grid, prof.pz_au, prof.j_sigma**2, left=0.0, right=0.0)
    area = float(np.trapezoid(np.where(np.abs(grid) < high_window_au[1], j, 0.0), grid))
    if area <= 0:
        raise EngineInputError("no counts inside the S windows: cannot normalise J(p_z)")
    return grid, j / area, np.sqrt(var) / area


def run_compton_calibrate(
    standards: str | os.PathLike | list[dict[str, Any]],
    output_path: str | os.PathLike,
    *,
    geometry: str | os.PathLike | dict | InstrumentGeometry | None = None,
    background: str | os.PathLike | np.ndarray | None = "fit",
    background_band_au: tuple[float, float] = DEFAULT_BACKGROUND_BAND_AU,
    tail_profile: str = "nmc811",
    resolution_fwhm: str | os.PathLike | np.ndarray | None = None,
    reference_fwhm_kev: float | None = DEFAULT_REFERENCE_FWHM_KEV,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    min_counts: float = 100.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit ``S = A + B (1 - x)`` with its covariance from spectra of reference standards.

    Each standard's S is measured exactly as :func:`run_compton` measures a region (same
    geometry, background, resolution reference and windows; S_L / S_H summed over its usable
    pixels), then a weighted straight line is fitted (:func:`fit_calibration`).

    Parameters
    ----------
    standards : path to a JSON file or list
        ``[{"spectra": PATH, "one_minus_x": VALUE, "mask": optional PATH}, ...]`` (paths in
        a file are relative to the file); at least two distinct stoichiometries.
    output_path : path
        JSON file written atomically: ``calibration`` (``intercept``, ``slope``, sigmas,
        ``covariance_ab``, ``source``), ``points`` and the measurement settings. It can be
        given back to ``compton --calibration FILE.json``.
    geometry
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    background
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    background_band_au
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    tail_profile
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    resolution_fwhm
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    reference_fwhm_kev
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    low_window_au
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    high_window_au
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    min_counts
        As for :func:`run_compton`; the same value as for the maps to be calibrated.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        ``calibration``, ``points`` (S, sigma, 1 - x per standard), ``chi2_reduced``.

    Raises
    ------
    EngineInputError
        Fewer than two standards, one stoichiometry only, unreadable spectra, bad options.
    """
    import json
    import tempfile
    from pathlib import Path

    from analysis_engine.io.common import atomic_output, read_json, to_jsonable

    base = Path(".")
    if isinstance(standards, str | os.PathLike):
        base = Path(standards).parent
        standards = read_json(standards, what="standards file")
    if not isinstance(standards, list) or len(standards) < 2:
        raise EngineInputError(
            "a calibration needs a list of at least two standards "
            '[{"spectra": PATH, "one_minus_x": VALUE}, ...]'
        )
    points = []
    with tempfile.TemporaryDirectory() as scratch:
        for k, item in enumerate(standards):
            if not isinstance(item, dict) or "spectra" not in item or "one_minus_x" not in item:
                raise EngineInputError(f"standard {k + 1}: needs 'spectra' and 'one_minus_x'")
            try:
                li = float(item["one_minus_x"])
            except (TypeError, ValueError):
                raise EngineInputError(f"standard {k + 1}: one_minus_x must be a number") from None
            if progress is not None:
                progress(k / len(standards), f"standard {k + 1} of {len(standards)}")
            path = Path(item["spectra"])
            path = path if path.is_absolute() else base / path
            mask = item.get("mask")
            summary = run_compton(
                path,
                Path(scratch) / f"standard{k}.h5",
                geometry=geometry,
                background=background,
                background_band_au=background_band_au,
                tail_profile=tail_profile,
                resolution_fwhm=resolution_fwhm,
                reference_fwhm_kev=reference_fwhm_kev,
                mask=None if mask is None else (mask if Path(mask).is_absolute() else base / mask),
                low_window_au=low_window_au,
                high_window_au=high_window_au,
                min_counts=min_counts,
                fit_peaks=False,
            )
            points.append(
                {
                    "spectra": str(item["spectra"]),
                    "one_minus_x": li,
                    "s": summary["s_total"],
                    "s_sigma": summary["s_total_sigma"],
                }
            )
    s = np.array([p["s"] for p in points])
    sig = np.array([p["s_sigma"] for p in points])
    li = np.array([p["one_minus_x"] for p in points])
    calib = fit_calibration(s, li, s_sigma=sig, source="compton-calibrate: reference standards")
    residual = s - calib.s_parameter(li)
    dof = max(len(points) - 2, 1)
    result = {
        "calibration": calib.as_dict(),
        "points": points,
        "chi2_reduced": float(np.sum((residual / sig) ** 2) / dof) if len(points) > 2 else None,
        "settings": {
            "geometry": geometry if isinstance(geometry, dict | None) else str(geometry),
            "background": background if isinstance(background, str | None) else "measured",
            "background_band_au": list(background_band_au),
            "reference_fwhm_kev": reference_fwhm_kev,
            "low_window_au": list(low_window_au),
            "high_window_au": list(high_window_au),
        },
    }
    with atomic_output(output_path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(result), indent=2), encoding="utf-8")
    return result


def run_compton_calibrate_spectra(
    spectra: Sequence[str | os.PathLike],
    output_path: str | os.PathLike,
    *,
    one_minus_x: Sequence[float],
    geometry: str | os.PathLike | dict | InstrumentGeometry | None = None,
    background: str | os.PathLike | np.ndarray | None = "fit",
    background_band_au: tuple[float, float] = DEFAULT_BACKGROUND_BAND_AU,
    tail_profile: str = "nmc811",
    reference_fwhm_kev: float | None = DEFAULT_REFERENCE_FWHM_KEV,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    min_counts: float = 100.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """:func:`run_compton_calibrate` with the standards given as spectra files and their
    known ``1 - x`` in the same order (how a job hands over its input datasets).

    Parameters
    ----------
    spectra : sequence of paths
        Spectra of the reference standards, one file each.
    output_path : path
        Calibration JSON, as :func:`run_compton_calibrate` writes it.
    one_minus_x : sequence of float
        Known Li stoichiometry (1 - x, e.g. from ICP) of each standard, in the order of
        ``spectra``.
    geometry, background, background_band_au, tail_profile, reference_fwhm_kev
        As for :func:`run_compton`; the same values as for the maps to be calibrated.
    low_window_au, high_window_au, min_counts
        As for :func:`run_compton`; the same values as for the maps to be calibrated.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        As :func:`run_compton_calibrate`.

    Raises
    ------
    EngineInputError
        ``one_minus_x`` not one number per spectra file, or as :func:`run_compton_calibrate`.
    """
    paths = [spectra] if isinstance(spectra, str | os.PathLike) else list(spectra)
    if isinstance(one_minus_x, str | bytes) or not isinstance(one_minus_x, Sequence):
        raise EngineInputError(
            "one_minus_x must be a list of numbers, one known 1 - x per standard's spectra"
        )
    if len(one_minus_x) != len(paths):
        raise EngineInputError(
            f"one_minus_x gives {len(one_minus_x)} value(s) for {len(paths)} standard spectra; "
            "give one known 1 - x per standard, in the order of the spectra"
        )
    standards = [
        {"spectra": str(path), "one_minus_x": value}
        for path, value in zip(paths, one_minus_x, strict=True)
    ]
    return run_compton_calibrate(
        standards,
        output_path,
        geometry=geometry,
        background=background,
        background_band_au=background_band_au,
        tail_profile=tail_profile,
        reference_fwhm_kev=reference_fwhm_kev,
        low_window_au=low_window_au,
        high_window_au=high_window_au,
        min_counts=min_counts,
        progress=progress,
    )


def _calibration_points(points: str | Sequence[tuple[float, float]]) -> LinearCalibration:
    try:
        if isinstance(points, str):
            points = [tuple(float(v) for v in item.split(":")) for item in points.split(",")]
        s, li = zip(*points, strict=True)
    except (TypeError, ValueError):
        raise EngineInputError(
            f"calibration points must be S:1-x pairs separated by commas, got {points!r}"
        ) from None
    return fit_calibration(s, li, source="fitted from the calibration points")


COMMANDS = (
    Command("compton", run_compton, inputs=("input_path",)),
    Command("compton-calibrate", run_compton_calibrate, inputs=("standards",)),
    Command("compton-calibrate-spectra", run_compton_calibrate_spectra, inputs=("spectra",)),
)
