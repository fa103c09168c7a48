"""Transport in the pore network: tortuosity, simulated EIS, TLM fit, directional diffusivity.

Implements the TauFactor method used by the paper (SCIENCE.md, "Tortuosity and simulated
EIS"; paper Eqs. 1-4 and Table 1). ``steady`` solves the steady-state tortuosity factor,
``impedance`` the frequency-domain problem (Eq. 1-2) and its transmission-line fit (Eq. 3-4),
``table`` the per-region, per-direction rows of Table 1.
"""

from analysis_engine.transport.impedance import (
    D_ELECTROLYTE_CM2_S,
    ImpedanceSpectrum,
    TransmissionLineFit,
    directional_diffusivity,
    finite_diffusion_impedance,
    fit_transmission_line,
    simulate_impedance,
    tau_from_ionic_resistance,
)
from analysis_engine.transport.steady import TortuosityResult, face_fluxes, tortuosity
from analysis_engine.transport.table import directional_table, split_regions

__all__ = [
    "D_ELECTROLYTE_CM2_S",
    "ImpedanceSpectrum",
    "TortuosityResult",
    "TransmissionLineFit",
    "directional_diffusivity",
    "directional_table",
    "face_fluxes",
    "finite_diffusion_impedance",
    "fit_transmission_line",
    "simulate_impedance",
    "split_regions",
    "tau_from_ionic_resistance",
    "tortuosity",
]
