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
    fit_calibration,
    parse_calibration,
)
from analysis_engine.compton.kinematics import compton_energy_kev, energy_from_pz
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

__all__ = ["COMMANDS", "run_compton"]

Progress = Callable[[float, str], None]


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
    return arr != 0


def _as_calibration(calibration: Any) -> LinearCalibration:
    if calibration is None:
        return DEFAULT_CALIBRATION
    if isinstance(calibration, LinearCalibration):
        return calibration
    if isinstance(calibration, str):
        return parse_calibration(calibration)
    try:
        a, b = (float(v) for v in calibration)
    except (TypeError, ValueError):
        raise EngineInputError(
            "calibration must be (intercept, slope) of S = A + B (1 - x)"
        ) from None
    return LinearCalibration(a, b)


def run_compton(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
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
        ``/li_stoichiometry``, ``/li_stoichiometry_sigma``, ``/peak_center_kev``,
        ``/peak_fwhm_kev`` (+ ``_sigma``), ``/peak_area``, ``/compton_counts``, ``/flags``
        (rows x cols, NaN outside the mask or where flagged), ``/mask``,
        ``/profile/pz_au``, ``/profile/j``, ``/profile/j_sigma``, ``/profile/energy_kev``
        (J(p_z) of the summed in-mask spectrum, area 1 over |p_z| < 5 a.u.),
        ``/summed_spectrum``, ``/energy_bins``.
    incident_kev, angle_deg : float
        Beam energy (keV) and scattering angle (deg) for Eq. 6.
    calibration : LinearCalibration, (A, B), "A,B" or None
        ``S = A + B (1 - x)``; default the paper's Table 2 fit, 0.650 + 2.309 (1 - x).
    calibration_points : "S:1-x,..." or sequence of (S, 1 - x), optional
        Fit the calibration line through these points instead of giving it, e.g.
        ``0.88:0.10,2.40:0.76`` (not together with ``calibration``).
    attenuation : float
        Per-region attenuation correction factor multiplying S (paper: 1.015, 1.010, 1.005
        for regions 1-3) before calibration.
    mask : path spec, array or None
        (rows, cols) region mask, nonzero inside (e.g. the XCT cathode footprint of one depth
        region); any ``read_array`` spec. Default: every pixel. Pixels marked in the file's
        ``/bad_pixels`` are always excluded.
    low_window_au, high_window_au : (float, float)
        ``|p_z|`` windows of S_L and S_H (Eqs. 8-9).
    klein_nishina : bool
        Correct counts by the relative Klein-Nishina factor (Eq. 5). Off by default: the
        paper's S values (and the default calibration) are from the spectra as measured.
    min_counts : float
        Pixels with fewer counts in the S windows are flagged and NaN (the peak fit uses
        twice this in its +-6 keV window).
    fit_peaks : bool
        Fit the pseudo-Voigt per pixel (centre/FWHM maps); skip for speed.
    eta : float, optional
        Fixed Lorentz fraction for the peak fits; default fitted on the summed spectrum.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        Summary: ``s_total`` (S of the summed in-mask spectrum), ``s_total_sigma``,
        ``li_total``, ``li_total_sigma``, ``s_mean``, ``s_std``, ``li_mean``, ``li_std``
        (over valid pixels), ``pixels`` (in the mask), ``pixels_valid``, ``pixels_flagged``,
        ``counts_total``, ``peak_center_kev``, ``peak_fwhm_kev`` (summed spectrum),
        ``calibration``, ``attenuation``, windows and geometry.

    Raises
    ------
    EngineInputError
        Missing energy axis, energy range not covering the windows, negative counts, no
        counts in the mask, a zero-slope calibration, bad mask or options.
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
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    windows = {"low_window_au": tuple(low_window_au), "high_window_au": tuple(high_window_au)}

    report(0.0, "reading spectra")
    energy, cube, attrs = read_any_spectra(input_path)
    rows, cols, _ = cube.shape
    inside = _mask_array(mask, (rows, cols))
    bad = attrs.get("bad_pixels")
    if isinstance(bad, np.ndarray) and bad.shape == inside.shape:
        inside &= ~bad
    if not inside.any():
        raise EngineInputError("the mask selects no pixels of the spectra")

    report(0.15, "S-parameter per pixel")
    smap = s_parameter(
        cube, energy, klein_nishina=klein_nishina, min_counts=min_counts, **windows, **kw
    )
    if not np.any(smap.window_counts[inside] > 0):
        raise EngineInputError(
            "all pixels in the mask have zero counts in the Compton windows "
            f"({energy_from_pz(-high_window_au[1], **kw):.2f}-"
            f"{energy_from_pz(high_window_au[1], **kw):.2f} keV): nothing to analyse"
        )
    summed = cube[inside].sum(axis=0, dtype=np.float64)
    total = s_parameter(
        summed, energy, klein_nishina=klein_nishina, min_counts=1.0, **windows, **kw
    )
    profile = compton_profile(
        summed, energy, klein_nishina=klein_nishina, high_window_au=high_window_au, **kw
    )

    flags = smap.flags.copy()
    flags[~inside] |= FLAG_OUTSIDE_MASK
    s_map = np.where(inside, smap.s, np.nan) * attenuation
    s_sigma = np.where(inside, smap.s_sigma, np.nan) * attenuation
    li_map = calib.stoichiometry(s_map)
    li_sigma = calib.stoichiometry_sigma(s_sigma)
    counts_map = np.where(inside, smap.window_counts, np.nan)
    s_total = float(total.s) * attenuation
    s_total_sigma = float(total.s_sigma) * attenuation

    datasets: dict[str, Any] = {
        "/s_parameter": s_map.astype(np.float32),
        "/s_parameter_sigma": s_sigma.astype(np.float32),
        "/li_stoichiometry": li_map.astype(np.float32),
        "/li_stoichiometry_sigma": li_sigma.astype(np.float32),
        "/compton_counts": counts_map.astype(np.float32),
        "/mask": inside.astype(np.uint8),
        "/profile/pz_au": profile.pz_au,
        "/profile/j": profile.j,
        "/profile/j_sigma": profile.j_sigma,
        "/profile/energy_kev": profile.energy_kev,
        "/summed_spectrum": summed,
        "/energy_bins": energy,
    }
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
        fits = fit_compton_peaks(cube[inside], energy, eta=eta, min_counts=2.0 * min_counts, **kw)
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

    valid = inside & np.isfinite(s_map)
    summary: dict[str, Any] = {
        "s_total": s_total,
        "s_total_sigma": s_total_sigma,
        "li_total": float(calib.stoichiometry(s_total)),
        "li_total_sigma": float(calib.stoichiometry_sigma(s_total_sigma)),
        "s_mean": float(np.mean(s_map[valid])) if valid.any() else None,
        "s_std": float(np.std(s_map[valid])) if valid.any() else None,
        "li_mean": float(np.mean(li_map[valid])) if valid.any() else None,
        "li_std": float(np.std(li_map[valid])) if valid.any() else None,
        "pixels": int(inside.sum()),
        "pixels_valid": int(valid.sum()),
        "pixels_flagged": int(np.count_nonzero(flags[inside])),
        "counts_total": float(np.nansum(counts_map)),
        **peak_summary,
        "calibration": calib.as_dict(),
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
                "s_definition": "measured: S_L/S_H from the spectra as recorded (detector "
                "resolution included), times the attenuation factor",
                "flag_bits": {str(k): v for k, v in FLAG_DESCRIPTIONS.items()},
                "source_file": os.path.basename(str(input_path)),
            }
        },
    )
    report(1.0, "done")
    return summary


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


COMMANDS = (Command("compton", run_compton, inputs=("input_path",)),)
