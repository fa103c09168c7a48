"""Theoretical S versus Li stoichiometry from free-atom Hartree-Fock Compton profiles (xraylib).

The compound profile of Li(1-x)Ni0.8Mn0.1Co0.1O2 is the electron-weighted sum of atomic
profiles (Biggs, Mendelsohn & Mann 1975 tables, via ``xraylib.ComptonProfile_Partial``, per
electron, times the shell occupancy). Outer shells (Li 2s; O 2s 2p; Mn/Co/Ni 3d 4s) are counted
as valence, the rest as core. Free atoms ignore bonding and the redistribution of the Li 2s
electron onto the transition metal and oxygen on lithiation, so this curve shows the trend and
size of the effect before ICP data exist; it is not a replacement for a measured calibration
(the paper used KKR-CPA band-structure profiles, which are not available here).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.compton.calibration import LinearCalibration, fit_calibration
from analysis_engine.compton.forward import spectrum_from_profile
from analysis_engine.compton.profile import (
    DEFAULT_HIGH_WINDOW_AU,
    DEFAULT_LOW_WINDOW_AU,
    bin_edges_from_centres,
    s_parameter,
)
from analysis_engine.errors import EngineInputError

__all__ = [
    "NMC811_PER_LI",
    "TheoreticalCurve",
    "atomic_profile",
    "compound_profile",
    "theoretical_s_curve",
]

#: Atoms per formula unit of Li(1-x)Ni0.8Mn0.1Co0.1O2 other than Li: {Z: count}.
NMC811_PER_LI = {28: 0.8, 25: 0.1, 27: 0.1, 8: 2.0}
_LITHIUM = 3
_PZ_GRID = np.linspace(0.0, 40.0, 2001)  # 0.02 a.u. steps; 1 and 5 a.u. are grid points

# shells counted as valence: Li 2s, O 2s 2p, 3d metals 3d 4s
_VALENCE_SHELLS = {
    3: ("L1_SHELL",),
    8: ("L1_SHELL", "L2_SHELL", "L3_SHELL"),
    25: ("M4_SHELL", "M5_SHELL", "N1_SHELL"),
    27: ("M4_SHELL", "M5_SHELL", "N1_SHELL"),
    28: ("M4_SHELL", "M5_SHELL", "N1_SHELL"),
}


@functools.lru_cache(maxsize=32)
def _atomic_tables(z: int) -> tuple[np.ndarray, np.ndarray]:
    import xraylib

    valence_ids = {getattr(xraylib, name) for name in _VALENCE_SHELLS.get(z, ())}
    valence = np.zeros_like(_PZ_GRID)
    core = np.zeros_like(_PZ_GRID)
    for shell in range(0, 40):
        try:
            occupancy = xraylib.ElectronConfig(z, shell)
        except ValueError:
            continue
        if occupancy <= 0:
            continue
        try:
            j = np.array([xraylib.ComptonProfile_Partial(z, shell, float(p)) for p in _PZ_GRID])
        except ValueError:
            continue
        if shell in valence_ids:
            valence += occupancy * j
        else:
            core += occupancy * j
    return valence, core


def atomic_profile(z: int, pz_au: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Free-atom Hartree-Fock Compton profile of element ``z``, split (valence, core).

    Parameters
    ----------
    z : int
        Atomic number.
    pz_au : array_like
        Momenta in atomic units (either sign: profiles are symmetric).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Valence and core J(p_z) in electrons per a.u.; their sum integrates to Z.
    """
    if int(z) < 1 or int(z) > 98:
        raise EngineInputError(f"no Compton profile tabulated for Z = {z}")
    valence, core = _atomic_tables(int(z))
    p = np.abs(np.asarray(pz_au, dtype=np.float64))
    return (
        np.interp(p, _PZ_GRID, valence, right=0.0),
        np.interp(p, _PZ_GRID, core, right=0.0),
    )


def compound_profile(
    one_minus_x: float, pz_au: ArrayLike, *, composition: dict[int, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Electron-weighted free-atom profile of Li(1-x)[composition], split (valence, core).

    Parameters
    ----------
    one_minus_x : float
        Li atoms per formula unit (0..1).
    pz_au : array_like
        Momenta in atomic units.
    composition : dict, optional
        The other atoms per formula unit ``{Z: count}``; default Ni0.8 Mn0.1 Co0.1 O2.
    """
    if not 0.0 <= float(one_minus_x) <= 1.0:
        raise EngineInputError(f"Li stoichiometry 1 - x must be within 0..1, got {one_minus_x}")
    atoms = dict(composition or NMC811_PER_LI)
    atoms[_LITHIUM] = atoms.get(_LITHIUM, 0.0) + float(one_minus_x)
    valence = np.zeros(np.shape(pz_au))
    core = np.zeros(np.shape(pz_au))
    for z, count in atoms.items():
        v, c = atomic_profile(z, pz_au)
        valence += count * v
        core += count * c
    return valence, core


@dataclass(frozen=True)
class TheoreticalCurve:
    """S versus (1 - x) from free-atom profiles.

    Attributes
    ----------
    one_minus_x : numpy.ndarray, shape (m,)
    s_true : numpy.ndarray, shape (m,)
        S of the unblurred compound profile (Eqs. 7-9 on J itself).
    s_measured : numpy.ndarray, shape (m,)
        S measured from the expected spectrum after the detector resolution (what
        :func:`analysis_engine.compton.s_parameter` would report).
    valence_fraction_low : numpy.ndarray, shape (m,)
        Share of S_L contributed by valence electrons (unblurred).
    calibration_true, calibration_measured : LinearCalibration
        Straight lines fitted through the two curves.
    resolution_fwhm_kev : float
    """

    one_minus_x: np.ndarray
    s_true: np.ndarray
    s_measured: np.ndarray
    valence_fraction_low: np.ndarray
    calibration_true: LinearCalibration
    calibration_measured: LinearCalibration
    resolution_fwhm_kev: float


def theoretical_s_curve(
    one_minus_x: ArrayLike = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    resolution_fwhm_kev: float = 0.79,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
    bin_width_kev: float = 0.25,
    composition: dict[int, float] | None = None,
) -> TheoreticalCurve:
    """Theoretical S-parameter of Li(1-x)Ni0.8Mn0.1Co0.1O2 for each (1 - x), free atoms.

    Parameters
    ----------
    one_minus_x : array_like, shape (m,)
        Li stoichiometries (0..1), at least two distinct values.
    resolution_fwhm_kev : float
        Detector resolution for the "measured" curve (paper: 0.79 keV FWHM).
    incident_kev, angle_deg : float
        Geometry (Eq. 6).
    low_window_au, high_window_au : (float, float)
        The S windows (Eqs. 8-9).
    bin_width_kev : float
        Energy bin width of the simulated spectrum for the measured curve.

    Returns
    -------
    TheoreticalCurve
    """
    li = np.atleast_1d(np.asarray(one_minus_x, dtype=np.float64))
    pz = np.linspace(-40.0, 40.0, 4001)  # 0.02 a.u.; +-1 and +-5 are grid points
    centres = np.arange(80.0, 110.0, bin_width_kev) + 0.5 * bin_width_kev
    edges = bin_edges_from_centres(centres)
    lo_mask = (np.abs(pz) >= low_window_au[0]) & (np.abs(pz) <= low_window_au[1])
    hi_mask = (np.abs(pz) >= high_window_au[0]) & (np.abs(pz) <= high_window_au[1])

    def window_integral(j: np.ndarray, mask: np.ndarray) -> float:
        # trapezoid over each contiguous run of grid points inside the window
        total = 0.0
        inside = np.flatnonzero(mask)
        runs = np.split(inside, np.flatnonzero(np.diff(inside) > 1) + 1)
        for run in runs:
            if run.size > 1:
                total += float(np.trapezoid(j[run], pz[run]))
        return total

    s_true, s_meas, val_frac = [], [], []
    for value in li:
        valence, core = compound_profile(float(value), pz, composition=composition)
        total = valence + core
        s_low = window_integral(total, lo_mask)
        s_true.append(s_low / window_integral(total, hi_mask))
        val_frac.append(window_integral(valence, lo_mask) / s_low)
        spectrum = spectrum_from_profile(
            edges,
            (pz, total),
            incident_kev=incident_kev,
            angle_deg=angle_deg,
            resolution_fwhm_kev=resolution_fwhm_kev,
            klein_nishina=True,
        )
        s_meas.append(
            float(
                s_parameter(
                    spectrum,
                    centres,
                    incident_kev=incident_kev,
                    angle_deg=angle_deg,
                    low_window_au=low_window_au,
                    high_window_au=high_window_au,
                    min_counts=0.0,
                ).s
            )
        )
    s_true_a, s_meas_a = np.array(s_true), np.array(s_meas)
    return TheoreticalCurve(
        one_minus_x=li,
        s_true=s_true_a,
        s_measured=s_meas_a,
        valence_fraction_low=np.array(val_frac),
        calibration_true=fit_calibration(s_true_a, li, source="xraylib free-atom, unblurred"),
        calibration_measured=fit_calibration(
            s_meas_a, li, source=f"xraylib free-atom, {resolution_fwhm_kev:g} keV FWHM"
        ),
        resolution_fwhm_kev=float(resolution_fwhm_kev),
    )
