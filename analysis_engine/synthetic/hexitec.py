"""Synthetic HEXITEC data with ground truth: photon events or raw frames from known spectra.

A photon's true energy is drawn from a per-pixel spectrum; the detector model then spreads
its charge to one (or two) random 8-neighbours at a chosen rate, adds Gaussian resolution to
every pixel's share (FWHM 0.8 keV at 59.54 keV by default, optionally energy-dependent), sums
hits in the same pixel and frame (pile-up), drops hits under the noise threshold, and writes
energies in keV or ADU through a per-pixel gain and offset.

:func:`beamline_spectrum` builds the default spectrum of the experiment (``SCIENCE.md``): the
Compton peak at 93.87 keV from a Compton profile J(p_z) via Eq. 6 and its Jacobian, the
115 keV elastic line, Cd K-alpha/K-beta 23.2/26.1 keV, Te 27.5/31.0 keV fluorescence and a
flat background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis_engine.compton.kinematics import dpz_denergy, pz_from_energy
from analysis_engine.errors import EngineInputError

__all__ = [
    "FLUORESCENCE_LINES_KEV",
    "SyntheticEvents",
    "SyntheticFrames",
    "beamline_spectrum",
    "blur_spectrum",
    "gaussian_compton_profile",
    "generate_events",
    "generate_frames",
    "random_calibration",
]

#: Detector fluorescence lines (keV) and relative weights: Cd K-alpha/K-beta, Te K-alpha/K-beta.
FLUORESCENCE_LINES_KEV = {23.2: 0.40, 26.1: 0.08, 27.5: 0.42, 31.0: 0.10}
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def gaussian_compton_profile(
    pz_au: np.ndarray,
    *,
    widths_au: tuple[float, ...] = (0.8, 2.5),
    weights: tuple[float, ...] = (0.45, 0.55),
) -> np.ndarray:
    """A simple analytic Compton profile: a sum of zero-centred Gaussians in p_z.

    Normalised so that its integral over all p_z is ``sum(weights)``. The narrow term mimics
    valence electrons, the wide one core electrons.

    Parameters
    ----------
    pz_au
        Electron momentum projection, atomic units.

    Returns
    -------
    numpy.ndarray
        J(p_z), same shape as ``pz_au``, per atomic unit.
    """
    pz = np.asarray(pz_au, dtype=np.float64)
    j = np.zeros_like(pz)
    for width, weight in zip(widths_au, weights, strict=True):
        j += weight * np.exp(-0.5 * (pz / width) ** 2) / (width * np.sqrt(2 * np.pi))
    return j


def _uniform_step(energy_kev: np.ndarray) -> float:
    e = np.asarray(energy_kev, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise EngineInputError("energy grid must be 1-D with at least 2 bin centres")
    steps = np.diff(e)
    if not np.all(steps > 0) or np.ptp(steps) > 1e-6 * steps.mean():
        raise EngineInputError("energy grid must be increasing and uniformly spaced")
    return float(steps.mean())


def beamline_spectrum(
    energy_kev: np.ndarray,
    *,
    incident_kev: float = 115.0,
    angle_deg: float = 90.0,
    compton_profile: Callable[[np.ndarray], np.ndarray]
    | tuple[np.ndarray, np.ndarray]
    | np.ndarray
    | None = None,
    compton_fraction: float = 0.72,
    elastic_fraction: float = 0.06,
    fluorescence_fraction: float = 0.08,
    background_fraction: float = 0.14,
    background_range_kev: tuple[float, float] = (5.0, 120.0),
) -> np.ndarray:
    """Expected photon spectrum of the experiment on a bin grid, normalised to sum 1.

    The Compton part is ``N(E2) dE2 = J(p_z) dp_z`` (``SCIENCE.md``), i.e.
    ``N(E2) = J(p_z(E2)) |dp_z/dE2|`` with Eq. 6 for p_z; the Klein-Nishina factor varies
    slowly across the peak and is left out. Lines put their whole weight in the bin holding
    their energy.

    Parameters
    ----------
    energy_kev
        (n,) uniform bin centres, keV.
    compton_profile
        J(p_z): a callable of p_z (a.u.), a ``(pz_au, j)`` pair to interpolate, an array of J
        at ``pz_from_energy(energy_kev)``, or None for :func:`gaussian_compton_profile`.
    compton_fraction, elastic_fraction, fluorescence_fraction, background_fraction
        Share of photons in each component (renormalised to sum 1).
    background_range_kev
        Flat background limits.

    Returns
    -------
    numpy.ndarray
        (n,) probability of a photon falling in each bin.
    """
    e = np.asarray(energy_kev, dtype=np.float64)
    step = _uniform_step(e)
    pz = pz_from_energy(e, incident_kev=incident_kev, angle_deg=angle_deg)
    if compton_profile is None:
        j = gaussian_compton_profile(pz)
    elif callable(compton_profile):
        j = np.asarray(compton_profile(pz), dtype=np.float64)
    elif isinstance(compton_profile, tuple):
        pz_grid, j_grid = (np.asarray(a, dtype=np.float64) for a in compton_profile)
        order = np.argsort(pz_grid)
        j = np.interp(pz, pz_grid[order], j_grid[order], left=0.0, right=0.0)
    else:
        j = np.asarray(compton_profile, dtype=np.float64)
    if j.shape != e.shape or not np.all(np.isfinite(j)) or np.any(j < 0):
        raise EngineInputError("Compton profile must give finite, non-negative J on the grid")
    valid = e < incident_kev  # Eq. 6 describes down-scattered photons only
    compton = np.where(valid, j * np.abs(dpz_denergy(e, incident_kev=incident_kev,
                                                     angle_deg=angle_deg)), 0.0) * step  # fmt: skip
    parts = []
    if compton.sum() > 0:
        parts.append((compton_fraction, compton / compton.sum()))
    edges = np.r_[e - step / 2, e[-1] + step / 2]

    def line(energy: float) -> np.ndarray:
        out = np.zeros_like(e)
        i = np.searchsorted(edges, energy, side="right") - 1
        if 0 <= i < e.size:
            out[i] = 1.0
        return out

    parts.append((elastic_fraction, line(incident_kev)))
    fluo = sum(w * line(en) for en, w in FLUORESCENCE_LINES_KEV.items())
    parts.append((fluorescence_fraction, fluo / max(fluo.sum(), 1e-300)))
    lo, hi = background_range_kev
    flat = ((e >= lo) & (e < hi)).astype(np.float64)
    if flat.sum() > 0:
        parts.append((background_fraction, flat / flat.sum()))
    total = sum(f * p for f, p in parts)
    if not total.sum() > 0:
        raise EngineInputError("the spectrum is empty on this energy grid")
    return total / total.sum()


def blur_spectrum(
    energy_kev: np.ndarray,
    spectrum: np.ndarray,
    *,
    fwhm_kev: float = 0.8,
    fwhm_reference_kev: float = 59.54,
    energy_dependent: bool = False,
) -> np.ndarray:
    """Apply Gaussian detector resolution to spectra on a uniform grid (counts conserved
    except what spreads beyond the grid ends).

    Parameters
    ----------
    spectrum
        (..., n) expected counts per bin.

    Returns
    -------
    numpy.ndarray
        Same shape: the expected measured spectrum.
    """
    e = np.asarray(energy_kev, dtype=np.float64)
    step = _uniform_step(e)
    sigma = _sigma_kev(e, fwhm_kev, fwhm_reference_kev, energy_dependent)
    edges = np.r_[e - step / 2, e[-1] + step / 2]
    from scipy.special import ndtr

    # kernel[i, j]: probability that a photon from bin i is measured in bin j
    z = (edges[None, :] - e[:, None]) / sigma[:, None]
    cdf = ndtr(z)
    kernel = np.diff(cdf, axis=1)
    return np.asarray(spectrum, dtype=np.float64) @ kernel


def _sigma_kev(energy, fwhm_kev, reference_kev, energy_dependent):
    energy = np.asarray(energy, dtype=np.float64)
    if energy_dependent:
        return fwhm_kev / _FWHM_PER_SIGMA * np.sqrt(np.maximum(energy, 0.0) / reference_kev)
    return np.full_like(energy, fwhm_kev / _FWHM_PER_SIGMA)


def random_calibration(
    rows: int = 80,
    cols: int = 80,
    *,
    gain_kev_per_adu: float = 0.04,
    gain_spread: float = 0.05,
    offset_kev: float = -2.0,
    offset_spread_kev: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gain (keV/ADU, relative spread ``gain_spread``) and offset (keV)."""
    rng = np.random.default_rng(seed)
    gain = gain_kev_per_adu * (1.0 + gain_spread * rng.standard_normal((rows, cols)))
    offset = offset_kev + offset_spread_kev * rng.standard_normal((rows, cols))
    return gain, offset


@dataclass(frozen=True)
class SyntheticEvents:
    """A generated event list and its ground truth.

    Attributes
    ----------
    frame, row, col
        (n,) sorted by frame.
    energy_kev
        (n,) float32 measured energies (None when ``adu`` is given).
    adu
        (n,) uint16 (None for keV output).
    gain_kev_per_adu, offset_kev
        (rows, cols) calibration used for ADU (None for keV output).
    n_frames
        Frames in the acquisition (including empty ones).
    true_histograms
        (rows, cols, n_bins) photons per pixel of incidence and true-energy bin (Poisson draw,
        before resolution, sharing or threshold).
    counts
        ``photons``, ``shared_2``, ``shared_3``, ``pileup_merged``, ``hits_below_threshold``,
        ``hits``.
    """

    frame: np.ndarray
    row: np.ndarray
    col: np.ndarray
    energy_kev: np.ndarray | None
    adu: np.ndarray | None
    gain_kev_per_adu: np.ndarray | None
    offset_kev: np.ndarray | None
    n_frames: int
    true_histograms: np.ndarray
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticFrames:
    """Generated raw frames (n_frames, rows, cols) uint16 ADU with calibration and truth."""

    frames_adu: np.ndarray
    gain_kev_per_adu: np.ndarray
    offset_kev: np.ndarray
    threshold_kev: float
    true_histograms: np.ndarray
    counts: dict[str, Any] = field(default_factory=dict)


_NEIGHBOURS = np.array(
    [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], dtype=np.int64
)


def _expected_cube(energy_kev, spectra, counts, rows, cols):
    spectra = np.asarray(spectra, dtype=np.float64)
    n = np.asarray(energy_kev).shape[0]
    if spectra.ndim == 1:
        if spectra.shape[0] != n:
            raise EngineInputError(f"spectrum has {spectra.shape[0]} bins, grid has {n}")
        if counts is None:
            raise EngineInputError("one spectrum for all pixels needs a per-pixel count map")
        counts = np.broadcast_to(np.asarray(counts, dtype=np.float64), (rows, cols))
        total = spectra.sum()
        if not total > 0:
            raise EngineInputError("spectrum sums to zero")
        return counts[..., None] * (spectra / total)[None, None, :]
    if spectra.shape != (rows, cols, n):
        raise EngineInputError(
            f"spectra must be ({n},) or ({rows}, {cols}, {n}), got {spectra.shape}"
        )
    return spectra


def _draw_hits(
    energy_kev, spectra, counts, rows, cols, n_frames, fwhm_kev, fwhm_reference_kev,
    energy_dependent, sharing_fraction, triple_fraction, rng, apply_resolution,
):  # fmt: skip
    """Photons -> hits (frame, pixel, energy) after sharing, resolution and pile-up."""
    e = np.asarray(energy_kev, dtype=np.float64)
    step = _uniform_step(e)
    expected = _expected_cube(e, spectra, counts, rows, cols)
    if np.any(expected < 0) or not np.all(np.isfinite(expected)):
        raise EngineInputError("expected counts must be finite and non-negative")
    if not 0 <= sharing_fraction <= 1 or not 0 <= triple_fraction <= 1:
        raise EngineInputError("sharing fractions must lie between 0 and 1")
    if sharing_fraction + triple_fraction > 1:
        raise EngineInputError("sharing_fraction + triple_fraction must not exceed 1")
    true_hist = rng.poisson(expected).astype(np.int64)
    flat = true_hist.reshape(-1)
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    n_ph = cell.size
    pix = cell // e.size
    energy = e[cell % e.size] + (rng.random(n_ph) - 0.5) * step
    frame = rng.integers(0, n_frames, n_ph, dtype=np.int64)
    r0, c0 = pix // cols, pix % cols

    u = rng.random(n_ph)
    two = u < sharing_fraction
    three = (u >= sharing_fraction) & (u < sharing_fraction + triple_fraction)
    hit_frame, hit_pix, hit_energy = [frame], [pix], [energy.copy()]

    def neighbour(sel: np.ndarray, avoid: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        idx = np.flatnonzero(sel)
        rr, cc = r0[idx], c0[idx]
        choice = rng.integers(0, 8, idx.size)
        for _ in range(64):  # redraw neighbours that fall off the detector or repeat one
            d = _NEIGHBOURS[choice]
            nr, nc = rr + d[:, 0], cc + d[:, 1]
            bad = (nr < 0) | (nr >= rows) | (nc < 0) | (nc >= cols)
            if avoid is not None:
                bad |= nr * cols + nc == avoid
            if not bad.any():
                break
            choice = np.where(bad, rng.integers(0, 8, idx.size), choice)
        return idx, nr * cols + nc

    if two.any():
        idx, npix = neighbour(two)
        share = rng.random(idx.size) * 0.5  # the pixel hit keeps the larger part
        hit_frame.append(frame[idx]), hit_pix.append(npix)
        hit_energy.append(energy[idx] * share)
        hit_energy[0][idx] = energy[idx] * (1.0 - share)
    if three.any():
        idx, n1 = neighbour(three)
        _, n2 = neighbour(three, avoid=n1)
        s1 = rng.random(idx.size) / 3.0
        s2 = rng.random(idx.size) / 3.0
        hit_frame += [frame[idx], frame[idx]]
        hit_pix += [n1, n2]
        hit_energy += [energy[idx] * s1, energy[idx] * s2]
        hit_energy[0][idx] = energy[idx] * (1.0 - s1 - s2)
    f = np.concatenate(hit_frame)
    p = np.concatenate(hit_pix)
    en = np.concatenate(hit_energy)
    order = np.lexsort((p, f))
    f, p, en = f[order], p[order], en[order]
    first = np.r_[True, (f[1:] != f[:-1]) | (p[1:] != p[:-1])] if f.size else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    merged = f.size - starts.size
    if merged:
        en = np.add.reduceat(en, starts)
        f, p = f[starts], p[starts]
    if apply_resolution:  # one electronic noise sample per pixel and frame
        en = en + rng.standard_normal(en.size) * _sigma_kev(
            en, fwhm_kev, fwhm_reference_kev, energy_dependent
        )
    counts_out = {
        "photons": int(n_ph),
        "shared_2": int(two.sum()),
        "shared_3": int(three.sum()),
        "pileup_merged": int(merged),
    }
    return f, p, en, true_hist, counts_out


def generate_events(
    energy_kev: np.ndarray,
    spectra: np.ndarray,
    *,
    counts: np.ndarray | float | None = None,
    n_frames: int = 100_000,
    rows: int = 80,
    cols: int = 80,
    fwhm_kev: float = 0.8,
    fwhm_reference_kev: float = 59.54,
    energy_dependent_resolution: bool = False,
    sharing_fraction: float = 0.1,
    triple_fraction: float = 0.0,
    threshold_kev: float = 5.0,
    gain_kev_per_adu: np.ndarray | None = None,
    offset_kev: np.ndarray | None = None,
    seed: int = 0,
) -> SyntheticEvents:
    """Draw a HEXITEC event list from known per-pixel spectra.

    Parameters
    ----------
    energy_kev
        (n_bins,) uniform bin centres of the spectra, keV.
    spectra
        (rows, cols, n_bins) expected photons per bin, or (n_bins,) one spectrum shape for
        every pixel scaled by ``counts``.
    counts
        Expected photons per pixel (scalar or (rows, cols)) when ``spectra`` is 1-D.
    n_frames
        Frames the photons are spread over (uniformly at random); sets the occupancy.
    fwhm_kev, fwhm_reference_kev, energy_dependent_resolution
        Gaussian resolution per hit; FWHM scales as sqrt(E / reference) when energy-dependent.
    sharing_fraction, triple_fraction
        Probability that a photon shares charge with one random 8-neighbour (which receives
        a uniform 0..50 % of the energy) or with two (0..33 % each).
    threshold_kev
        Hits below it are lost (as on the detector).
    gain_kev_per_adu, offset_kev
        Give both (rows, cols) to write ADU, ``adu = round((E - offset) / gain)``.
    seed
        Random seed: the same seed gives the same events.

    Returns
    -------
    SyntheticEvents
    """
    if n_frames < 1:
        raise EngineInputError("n_frames must be at least 1")
    rng = np.random.default_rng(seed)
    f, p, en, true_hist, info = _draw_hits(
        energy_kev, spectra, counts, rows, cols, n_frames, fwhm_kev, fwhm_reference_kev,
        energy_dependent_resolution, sharing_fraction, triple_fraction, rng, True,
    )  # fmt: skip
    keep = en >= threshold_kev
    info["hits_below_threshold"] = int((~keep).sum())
    f, p, en = f[keep], p[keep], en[keep]
    info["hits"] = int(f.size)
    row, col = (p // cols).astype(np.uint8), (p % cols).astype(np.uint8)
    frame = f.astype(np.uint32)
    if (gain_kev_per_adu is None) != (offset_kev is None):
        raise EngineInputError("give both gain_kev_per_adu and offset_kev, or neither")
    if gain_kev_per_adu is None:
        return SyntheticEvents(
            frame, row, col, en.astype(np.float32), None, None, None, n_frames, true_hist, info
        )
    gain = np.asarray(gain_kev_per_adu, dtype=np.float64)
    offset = np.asarray(offset_kev, dtype=np.float64)
    adu = np.clip(np.rint((en - offset.ravel()[p]) / gain.ravel()[p]), 0, 65535).astype(np.uint16)
    return SyntheticEvents(frame, row, col, None, adu, gain, offset, n_frames, true_hist, info)


def generate_frames(
    energy_kev: np.ndarray,
    spectra: np.ndarray,
    *,
    counts: np.ndarray | float | None = None,
    n_frames: int = 10_000,
    rows: int = 80,
    cols: int = 80,
    fwhm_kev: float = 0.8,
    fwhm_reference_kev: float = 59.54,
    energy_dependent_resolution: bool = False,
    sharing_fraction: float = 0.1,
    triple_fraction: float = 0.0,
    threshold_kev: float = 5.0,
    gain_kev_per_adu: np.ndarray | None = None,
    offset_kev: np.ndarray | None = None,
    seed: int = 0,
) -> SyntheticFrames:
    """Draw raw HEXITEC frames (n_frames, rows, cols) uint16 ADU from known spectra.

    Every pixel of every frame carries Gaussian electronic noise of the FWHM at the reference
    energy; hit pixels add the extra energy-dependent part if requested. ``threshold_kev`` is
    stored for the reader (it should sit well above the noise, e.g. 5 keV). Other parameters
    as in :func:`generate_events`; default calibration from :func:`random_calibration`.
    """
    if n_frames < 1:
        raise EngineInputError("n_frames must be at least 1")
    rng = np.random.default_rng(seed)
    if gain_kev_per_adu is None or offset_kev is None:
        gain_kev_per_adu, offset_kev = random_calibration(rows, cols, seed=seed + 1)
    gain = np.asarray(gain_kev_per_adu, dtype=np.float64)
    offset = np.asarray(offset_kev, dtype=np.float64)
    f, p, en, true_hist, info = _draw_hits(
        energy_kev, spectra, counts, rows, cols, n_frames, fwhm_kev, fwhm_reference_kev,
        energy_dependent_resolution, sharing_fraction, triple_fraction, rng, False,
    )  # fmt: skip
    sigma0 = fwhm_kev / _FWHM_PER_SIGMA
    if energy_dependent_resolution:
        extra = np.sqrt(
            np.maximum(_sigma_kev(en, fwhm_kev, fwhm_reference_kev, True) ** 2 - sigma0**2, 0)
        )
        en = en + rng.standard_normal(en.size) * extra
    frames = np.empty((n_frames, rows, cols), dtype=np.uint16)
    block = 2048
    bounds = np.searchsorted(f, np.arange(0, n_frames + block, block))
    for b, start in enumerate(range(0, n_frames, block)):
        stop = min(start + block, n_frames)
        energy = sigma0 * rng.standard_normal((stop - start, rows * cols))
        s, e = bounds[b], bounds[b + 1]
        np.add.at(energy, (f[s:e] - start, p[s:e]), en[s:e])
        adu = np.rint((energy - offset.ravel()) / gain.ravel())
        frames[start:stop] = np.clip(adu, 0, 65535).reshape(-1, rows, cols)
    info["hits"] = int(f.size)
    return SyntheticFrames(frames, gain, offset, float(threshold_kev), true_hist, info)
