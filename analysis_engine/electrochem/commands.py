"""The electrochemistry stage: a measured EIS or cycling table in, fit and statistics out.

``run_electrochem(TABLE.csv, OUT.h5, *, ...)`` reads the table through
:mod:`analysis_engine.io.tables` and, by its kind,

- EIS: fits R_e + (R_CT || C) + Warburg (:func:`fit_randles_warburg`) with uncertainties and
  turns the Warburg coefficient into D_overall (:func:`diffusivity_from_warburg`) with the
  electrode area and electrolyte concentration given (the platform takes them from the
  catalogue). Writes the measured spectrum and the fitted curve over the same frequencies.
- cycling: capacities, Coulombic efficiency per cycle and the summary statistics
  (:func:`summarize_cycling`).

Output layout: ``/eis/frequency_hz``, ``/eis/z_real_ohm``, ``/eis/z_imag_ohm``,
``/eis/fit_z_real_ohm``, ``/eis/fit_z_imag_ohm``; or ``/cycling/cycle``,
``/cycling/charge_capacity_mah_g``, ``/cycling/discharge_capacity_mah_g``,
``/cycling/coulombic_efficiency_pct``. Root attr ``table_kind``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis_engine import __version__
from analysis_engine.electrochem.cycling import coulombic_efficiency, summarize_cycling
from analysis_engine.electrochem.eis import (
    DEFAULT_AREA_CM2,
    DEFAULT_CONCENTRATION_MOL_CM3,
    diffusivity_from_warburg,
    fit_randles_warburg,
)
from analysis_engine.io.common import write_hdf5
from analysis_engine.io.tables import read_table
from analysis_engine.parameters import Command

__all__ = ["COMMANDS", "run_electrochem", "eis_summary"]


def eis_summary(
    frequency_hz: np.ndarray,
    z_ohm: np.ndarray,
    *,
    area_cm2: float = DEFAULT_AREA_CM2,
    concentration_mol_cm3: float = DEFAULT_CONCENTRATION_MOL_CM3,
    temperature_k: float = 298.15,
    electrons: int = 1,
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit one spectrum; return (summary dict, fitted impedance at ``frequency_hz``).

    D_overall's uncertainty follows from D ~ sigma^-2: ``u(D) / D = 2 u(sigma) / sigma``.
    """
    fit = fit_randles_warburg(frequency_hz, z_ohm)
    options = {
        "area_cm2": area_cm2,
        "concentration_mol_cm3": concentration_mol_cm3,
        "temperature_k": temperature_k,
        "electrons": electrons,
    }
    d = diffusivity_from_warburg(fit.sigma_ohm_s05, **options)
    d_sigma = 2.0 * d * fit.sigma_sigma_ohm_s05 / fit.sigma_ohm_s05
    summary = {
        "table_kind": "eis",
        "points": fit.n_points,
        "r_e_ohm": fit.r_e_ohm,
        "r_e_sigma_ohm": fit.r_e_sigma_ohm,
        "r_ct_ohm": fit.r_ct_ohm,
        "r_ct_sigma_ohm": fit.r_ct_sigma_ohm,
        "c_dl_f": fit.c_dl_f,
        "c_dl_sigma_f": fit.c_dl_sigma_f,
        "warburg_sigma_ohm_s05": fit.sigma_ohm_s05,
        "warburg_sigma_sigma_ohm_s05": fit.sigma_sigma_ohm_s05,
        "d_overall_cm2_s": d,
        "d_overall_sigma_cm2_s": d_sigma,
        "relative_rms": fit.relative_rms,
        **options,
    }
    return summary, fit.impedance(frequency_hz)


def run_electrochem(
    table: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    area_cm2: float = DEFAULT_AREA_CM2,
    concentration_mol_cm3: float = DEFAULT_CONCENTRATION_MOL_CM3,
    temperature_k: float = 298.15,
    electrons: int = 1,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Analyse a measured EIS spectrum or cycling table (see the module docstring).

    Parameters
    ----------
    table
        CSV path (EIS or cycling layout of :mod:`analysis_engine.io.tables`).
    output_path
        HDF5 file to write (atomically).
    area_cm2
        Electrode area, cm^2 (EIS only).
    concentration_mol_cm3
        Li+ concentration of the electrolyte, mol/cm^3 (1 M = 1e-3; EIS only).
    temperature_k
        Temperature, K (EIS only).
    electrons
        Electrons transferred per ion (EIS only).

    Returns
    -------
    dict
        EIS: fitted parameters with ``*_sigma_*`` uncertainties, ``d_overall_cm2_s``; cycling:
        :class:`~analysis_engine.electrochem.cycling.CyclingSummary` fields.

    Raises
    ------
    EngineInputError
        An unreadable table, too few points, a non-physical fit.
    """
    report = progress or (lambda fraction, message: None)
    report(0.05, f"reading {os.fspath(table)}")
    data = read_table(table)
    cols = data.columns
    attrs = {"table_kind": data.kind, "engine_version": __version__, "source": os.fspath(table)}
    if data.kind == "eis":
        f = cols["frequency_hz"]
        z = cols["z_real_ohm"] + 1j * cols["z_imag_ohm"]
        report(0.3, "fitting R_e + (R_CT || C) + Warburg")
        summary, fitted = eis_summary(
            f,
            z,
            area_cm2=area_cm2,
            concentration_mol_cm3=concentration_mol_cm3,
            temperature_k=temperature_k,
            electrons=electrons,
        )
        datasets = {
            "/eis/frequency_hz": f,
            "/eis/z_real_ohm": z.real,
            "/eis/z_imag_ohm": z.imag,
            "/eis/fit_z_real_ohm": fitted.real,
            "/eis/fit_z_imag_ohm": fitted.imag,
        }
    else:
        report(0.3, "cycling statistics")
        cycle = cols["cycle"]
        charge, discharge = cols["charge_capacity_mah_g"], cols["discharge_capacity_mah_g"]
        stats = summarize_cycling(cycle, charge, discharge)
        order = np.argsort(cycle, kind="stable")
        summary = {"table_kind": "cycling", **stats.__dict__}
        datasets = {
            "/cycling/cycle": cycle[order],
            "/cycling/charge_capacity_mah_g": charge[order],
            "/cycling/discharge_capacity_mah_g": discharge[order],
            "/cycling/coulombic_efficiency_pct": coulombic_efficiency(
                charge[order], discharge[order]
            ),
        }
    write_hdf5(output_path, datasets, attrs={"/": attrs})
    report(1.0, "electrochem done")
    return summary


COMMANDS = (Command("electrochem", run_electrochem, inputs=("table",)),)
