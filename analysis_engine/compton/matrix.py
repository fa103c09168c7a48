"""Electrolyte, carbon and binder scatter: the cathode's own S from the measured one.

Every electron in the scattering volume contributes to the Compton spectrum in proportion to
its count. In a porous cathode the pores hold electrolyte (here 1 M LiPF6 in EC:DEC 1:1 by
volume) and the solid is NMC811 + carbon black + PVDF (slurry 90 : 5 : 5 by weight), so the
share of electrons that are *not* NMC rises with porosity. With free-atom profiles (xraylib)
for the other phases, the counts that they put into each S window are predicted per electron
and removed:

``N = (S_L + S_H) / ((1 - f) w_NMC + f w_other)``,
``S_cathode = (S_L - N f l_other) / (S_H - N f h_other)``,

with ``f`` the non-NMC electron fraction of the pixel, ``l, h`` the per-electron window
fractions (after the detector blur) and ``w = l + h``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.compton.forward import spectrum_from_profile
from analysis_engine.compton.profile import (
    DEFAULT_HIGH_WINDOW_AU,
    DEFAULT_LOW_WINDOW_AU,
    window_weights,
)
from analysis_engine.errors import EngineInputError

__all__ = ["Phase", "CellComposition", "DEFAULT_COMPOSITION", "MatrixCorrection", "matrix_model"]

_ATOMIC_MASS = {1: 1.008, 3: 6.94, 6: 12.011, 8: 15.999, 9: 18.998, 15: 30.974, 25: 54.938,
                27: 58.933, 28: 58.693}  # fmt: skip


@dataclass(frozen=True)
class Phase:
    """A phase as atoms per formula unit and density."""

    name: str
    atoms: dict[int, float]
    density_g_cm3: float

    @property
    def electrons_per_gram(self) -> float:
        mass = sum(_ATOMIC_MASS[z] * n for z, n in self.atoms.items())
        return sum(z * n for z, n in self.atoms.items()) / mass


NMC811 = Phase("NMC811 (Li0.5)", {3: 0.5, 28: 0.8, 25: 0.1, 27: 0.1, 8: 2.0}, 4.75)
CARBON = Phase("carbon black", {6: 1.0}, 1.9)
PVDF = Phase("PVDF", {6: 2.0, 1: 2.0, 9: 2.0}, 1.78)
# 1 M LiPF6 in EC:DEC 1:1 (v/v): per litre about 6.5 mol EC, 4.1 mol DEC, 1 mol LiPF6
ELECTROLYTE = Phase(
    "1 M LiPF6 in EC:DEC",
    {3: 1.0, 15: 1.0, 9: 6.0, 6: 6.5 * 3 + 4.1 * 5, 1: 6.5 * 4 + 4.1 * 10, 8: 3 * (6.5 + 4.1)},
    1.26,
)


@dataclass(frozen=True)
class CellComposition:
    """Solid weight fractions and the phases of a composite cathode."""

    nmc_weight_fraction: float = 0.90
    carbon_weight_fraction: float = 0.05
    binder_weight_fraction: float = 0.05
    electrolyte: Phase = ELECTROLYTE
    phases: tuple[Phase, Phase, Phase] = field(default=(NMC811, CARBON, PVDF))

    def __post_init__(self) -> None:
        fr = (self.nmc_weight_fraction, self.carbon_weight_fraction, self.binder_weight_fraction)
        if min(fr) < 0 or not np.isclose(sum(fr), 1.0, atol=1e-6):
            raise EngineInputError(
                f"composition: NMC, carbon and binder weight fractions must be >= 0 and sum to 1, "
                f"got {fr}"
            )

    def electrons_per_cm3(self) -> tuple[float, float]:
        """Electrons per cm3 of (solid NMC part, solid non-NMC part) of the solid phase, / N_A."""
        wts = (self.nmc_weight_fraction, self.carbon_weight_fraction, self.binder_weight_fraction)
        volumes = [w / p.density_g_cm3 for w, p in zip(wts, self.phases, strict=True)]
        total_volume = sum(volumes)
        electrons = [w * p.electrons_per_gram for w, p in zip(wts, self.phases, strict=True)]
        return electrons[0] / total_volume, sum(electrons[1:]) / total_volume

    def non_cathode_fraction(self, porosity: ArrayLike) -> np.ndarray:
        """Share of the electrons that are not NMC, for pore volume fraction ``porosity``."""
        phi = np.asarray(porosity, dtype=np.float64)
        nmc, other_solid = self.electrons_per_cm3()
        el = self.electrolyte.density_g_cm3 * self.electrolyte.electrons_per_gram
        solid = 1.0 - phi
        return (solid * other_solid + phi * el) / (solid * (nmc + other_solid) + phi * el)


DEFAULT_COMPOSITION = CellComposition()


@dataclass(frozen=True)
class MatrixCorrection:
    """Per-electron window fractions of the cathode and of the other phases."""

    low_nmc: float
    high_nmc: float
    low_other: float
    high_other: float
    composition: CellComposition

    def cathode_s(
        self, low_integral: ArrayLike, high_integral: ArrayLike, porosity: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        """S of the NMC alone and the non-NMC electron fraction, per pixel.

        Parameters
        ----------
        low_integral, high_integral : array_like
            Background-subtracted S_L and S_H (counts).
        porosity : array_like
            Pore volume fraction of each pixel (0..1), same shape.
        """
        f = self.composition.non_cathode_fraction(porosity)
        a = np.asarray(low_integral, dtype=np.float64)
        b = np.asarray(high_integral, dtype=np.float64)
        electrons = (a + b) / (
            (1 - f) * (self.low_nmc + self.high_nmc) + f * (self.low_other + self.high_other)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (a - electrons * f * self.low_other) / (b - electrons * f * self.high_other)
        return s, f

    def as_dict(self) -> dict[str, float]:
        return {
            "low_nmc": self.low_nmc,
            "high_nmc": self.high_nmc,
            "low_other": self.low_other,
            "high_other": self.high_other,
            "s_other": self.low_other / self.high_other,
        }


@functools.lru_cache(maxsize=8)
def _phase_windows(
    atoms: tuple[tuple[int, float], ...],
    resolution_fwhm_kev: float,
    incident_kev: float,
    angle_deg: float,
    low: tuple[float, float],
    high: tuple[float, float],
) -> tuple[float, float]:
    from analysis_engine.compton.theory import atomic_profile

    pz = np.linspace(-40.0, 40.0, 4001)
    j = np.zeros_like(pz)
    electrons = 0.0
    for z, n in atoms:
        v, c = atomic_profile(z, pz)
        j += n * (v + c)
        electrons += n * z
    centres = np.arange(70.0, 114.0, 0.05) + 0.025
    edges = np.append(centres - 0.025, centres[-1] + 0.025)
    kw = {"incident_kev": incident_kev, "angle_deg": angle_deg}
    spectrum = spectrum_from_profile(
        edges,
        (pz, j / electrons),
        resolution_fwhm_kev=resolution_fwhm_kev,
        klein_nishina=False,
        **kw,
    )
    w = window_weights(edges, [low, high], **kw)
    lo, hi = spectrum @ w
    return float(lo), float(hi)


def matrix_model(
    *,
    composition: CellComposition = DEFAULT_COMPOSITION,
    resolution_fwhm_kev: float = 0.8,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    low_window_au: tuple[float, float] = DEFAULT_LOW_WINDOW_AU,
    high_window_au: tuple[float, float] = DEFAULT_HIGH_WINDOW_AU,
) -> MatrixCorrection:
    """Free-atom (xraylib) window fractions per electron for NMC811 and the other phases.

    The other phases are mixed in the proportions a pixel of 25 % porosity holds (their
    relative shares change little with porosity, and their per-electron profiles are alike).
    """
    low, high = tuple(map(float, low_window_au)), tuple(map(float, high_window_au))
    args = (float(resolution_fwhm_kev), float(incident_kev), float(angle_deg), low, high)
    nmc = _phase_windows(tuple(sorted(composition.phases[0].atoms.items())), *args)
    # electron-weighted mixture of carbon, binder and electrolyte at 25 % porosity
    wts = (composition.carbon_weight_fraction, composition.binder_weight_fraction)
    solid_volume = sum(
        w / p.density_g_cm3
        for w, p in zip((composition.nmc_weight_fraction, *wts), composition.phases, strict=True)
    )
    shares = []
    for w, p in zip(wts, composition.phases[1:], strict=True):
        shares.append((0.75 * w / solid_volume * p.electrons_per_gram, p))
    el = composition.electrolyte
    shares.append((0.25 * el.density_g_cm3 * el.electrons_per_gram, el))
    total = sum(s for s, _ in shares)
    low_o = high_o = 0.0
    for share, phase in shares:
        lo, hi = _phase_windows(tuple(sorted(phase.atoms.items())), *args)
        low_o += share / total * lo
        high_o += share / total * hi
    return MatrixCorrection(nmc[0], nmc[1], low_o, high_o, composition)
