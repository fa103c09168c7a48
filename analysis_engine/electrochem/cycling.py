"""Galvanostatic cycling figures of merit: Coulombic efficiency and capacity retention."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.errors import EngineInputError

__all__ = ["CyclingSummary", "coulombic_efficiency", "capacity_retention", "summarize_cycling"]


@dataclass(frozen=True)
class CyclingSummary:
    """Figures of merit of a cycling test (capacities in mAh/g, efficiencies in %)."""

    cycles: int
    first_charge_mah_g: float
    first_discharge_mah_g: float
    mean_coulombic_efficiency_pct: float
    retention_pct: float
    retention_cycle: int


def _capacities(charge: ArrayLike, discharge: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(charge, dtype=np.float64).ravel()
    d = np.asarray(discharge, dtype=np.float64).ravel()
    if c.shape != d.shape or c.size == 0:
        raise EngineInputError(
            f"charge and discharge capacities must be equal-length, non-empty series "
            f"(got {c.size} and {d.size})"
        )
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(d))) or np.any(c < 0) or np.any(d < 0):
        raise EngineInputError("capacities must be finite and non-negative (mAh/g)")
    return c, d


def coulombic_efficiency(charge_mah_g: ArrayLike, discharge_mah_g: ArrayLike) -> np.ndarray:
    """Coulombic efficiency per cycle, 100 * discharge / charge (%), NaN where charge is 0.

    Parameters
    ----------
    charge_mah_g, discharge_mah_g : array_like, shape (n_cycles,)
        Charge and discharge capacity of each cycle, mAh/g (cathode: charge first).
    """
    c, d = _capacities(charge_mah_g, discharge_mah_g)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, 100.0 * d / c, np.nan)


def capacity_retention(
    discharge_mah_g: ArrayLike, *, at_cycle: int | None = None, reference_cycle: int = 1
) -> float:
    """Discharge capacity at ``at_cycle`` relative to ``reference_cycle``, in %.

    Cycles are 1-based positions in the series (default: the last cycle). The paper reports
    90 % (DIT) and 88 % (slurry-cast) after 200 cycles.
    """
    d = np.asarray(discharge_mah_g, dtype=np.float64).ravel()
    n = d.size
    at = n if at_cycle is None else int(at_cycle)
    if not (1 <= reference_cycle <= n and 1 <= at <= n):
        raise EngineInputError(
            f"cycles must lie in 1..{n}; got reference {reference_cycle}, at {at}"
        )
    if not d[reference_cycle - 1] > 0:
        raise EngineInputError(f"the reference cycle {reference_cycle} has no discharge capacity")
    return float(100.0 * d[at - 1] / d[reference_cycle - 1])


def summarize_cycling(
    cycle: ArrayLike, charge_mah_g: ArrayLike, discharge_mah_g: ArrayLike
) -> CyclingSummary:
    """First-cycle capacities, mean Coulombic efficiency and retention at the last cycle.

    Rows are sorted by ``cycle`` first; the mean Coulombic efficiency leaves out cycle 1
    (formation losses).
    """
    cyc = np.asarray(cycle, dtype=np.float64).ravel()
    c, d = _capacities(charge_mah_g, discharge_mah_g)
    if cyc.shape != c.shape:
        raise EngineInputError("cycle numbers and capacities must have the same length")
    order = np.argsort(cyc, kind="stable")
    cyc, c, d = cyc[order], c[order], d[order]
    ce = coulombic_efficiency(c, d)
    later = ce[1:] if ce.size > 1 else ce
    return CyclingSummary(
        cycles=int(cyc.size),
        first_charge_mah_g=float(c[0]),
        first_discharge_mah_g=float(d[0]),
        mean_coulombic_efficiency_pct=float(np.nanmean(later)),
        retention_pct=capacity_retention(d),
        retention_cycle=int(cyc[-1]),
    )
