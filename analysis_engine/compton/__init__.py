"""Compton profiles, S-parameter and Li stoichiometry maps (paper Eqs. 5-9).

- :mod:`~analysis_engine.compton.kinematics`: Eq. 6 energy <-> p_z, Jacobian, Klein-Nishina.
- :mod:`~analysis_engine.compton.profile`: S-parameter per pixel (exact partial bins), J(p_z).
- :mod:`~analysis_engine.compton.peakfit`: vectorised pseudo-Voigt + background fits.
- :mod:`~analysis_engine.compton.calibration`: S <-> (1 - x), default from paper Table 2.
- :mod:`~analysis_engine.compton.theory`: free-atom (xraylib) S versus (1 - x).
- :mod:`~analysis_engine.compton.forward`: J(p_z) -> expected counts per energy bin.
- :mod:`~analysis_engine.compton.geometry`: pinhole geometry, scattering angle per pixel.
- :mod:`~analysis_engine.compton.corrected`: S maps of real spectra (per-pixel angle,
  background, resolution, bad pixels).
- :mod:`~analysis_engine.compton.matrix`: electrolyte, carbon and binder scatter (free atoms).
- :mod:`~analysis_engine.compton.commands`: the ``compton`` command (:func:`run_compton`).
"""

from analysis_engine.compton.calibration import (
    DEFAULT_CALIBRATION,
    PAPER_TABLE2,
    LinearCalibration,
    fit_calibration,
)
from analysis_engine.compton.corrected import (
    CorrectedSMaps,
    corrected_s_parameter,
    find_bad_pixels,
)
from analysis_engine.compton.forward import spectrum_from_profile
from analysis_engine.compton.geometry import (
    PAPER_GEOMETRY,
    InstrumentGeometry,
    geometry_from_mapping,
    pixel_angles_deg,
)
from analysis_engine.compton.kinematics import (
    compton_energy_kev,
    dpz_denergy,
    energy_from_pz,
    klein_nishina_factor,
    pz_from_energy,
)
from analysis_engine.compton.matrix import CellComposition, MatrixCorrection, matrix_model
from analysis_engine.compton.peakfit import PeakFit, fit_compton_peaks, pseudo_voigt_bin_counts
from analysis_engine.compton.profile import (
    FLAG_FIT_FAILED,
    FLAG_LOW_COUNTS,
    FLAG_OUTSIDE_MASK,
    ComptonProfile,
    SParameterMaps,
    compton_profile,
    s_parameter,
    window_energy_intervals,
    window_weights,
)
from analysis_engine.compton.theory import TheoreticalCurve, compound_profile, theoretical_s_curve

__all__ = [
    "DEFAULT_CALIBRATION",
    "PAPER_TABLE2",
    "LinearCalibration",
    "fit_calibration",
    "spectrum_from_profile",
    "CorrectedSMaps",
    "corrected_s_parameter",
    "find_bad_pixels",
    "PAPER_GEOMETRY",
    "InstrumentGeometry",
    "geometry_from_mapping",
    "pixel_angles_deg",
    "CellComposition",
    "MatrixCorrection",
    "matrix_model",
    "compton_energy_kev",
    "dpz_denergy",
    "energy_from_pz",
    "klein_nishina_factor",
    "pz_from_energy",
    "PeakFit",
    "fit_compton_peaks",
    "pseudo_voigt_bin_counts",
    "FLAG_FIT_FAILED",
    "FLAG_LOW_COUNTS",
    "FLAG_OUTSIDE_MASK",
    "ComptonProfile",
    "SParameterMaps",
    "compton_profile",
    "s_parameter",
    "window_energy_intervals",
    "window_weights",
    "TheoreticalCurve",
    "compound_profile",
    "theoretical_s_curve",
]
