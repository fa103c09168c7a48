"""Electrochemistry of the coin cells: cycling figures of merit and the EIS equivalent circuit.

Context for the catalogue and the comparison reports (Huang et al. 2022, Sec. 2.4): capacity,
Coulombic efficiency and capacity retention from galvanostatic cycling, and the
R_e + (R_CT || C) + Warburg circuit whose Warburg coefficient gives D_overall.
"""

from analysis_engine.electrochem.cycling import (
    CyclingSummary,
    capacity_retention,
    coulombic_efficiency,
    summarize_cycling,
)
from analysis_engine.electrochem.eis import (
    RandlesFit,
    diffusivity_from_warburg,
    fit_randles_warburg,
    randles_warburg_impedance,
    warburg_from_diffusivity,
)

__all__ = [
    "CyclingSummary",
    "capacity_retention",
    "coulombic_efficiency",
    "summarize_cycling",
    "RandlesFit",
    "diffusivity_from_warburg",
    "fit_randles_warburg",
    "randles_warburg_impedance",
    "warburg_from_diffusivity",
]
