"""Flat/dark normalisation and minus log: raw counts to line integrals.

Beer-Lambert: ``I = I0 exp(-integral mu ds)``, so the line integral is
``-ln((P - D) / (F - D))`` with P the projection, F the mean flat and D the mean dark.
"""

from __future__ import annotations

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = ["normalize", "minus_log", "line_integrals"]

# Transmission is clipped to this range before the log: a fully absorbed (or dead) pixel
# becomes a large but finite line integral instead of +inf.
MIN_TRANSMISSION = 1.0e-6


def normalize(
    projections: np.ndarray, flat: np.ndarray, dark: np.ndarray, *, min_signal: float = 1e-3
) -> np.ndarray:
    """Flat/dark normalised transmission ``(P - D) / (F - D)``.

    Parameters
    ----------
    projections : ndarray, shape (..., rows, cols) or (rows, n_angles, cols)
        Raw counts; ``flat`` and ``dark`` broadcast against it.
    flat, dark : ndarray
        Mean flat and dark fields (counts), broadcastable to ``projections``.
    min_signal
        Open-beam signals ``F - D`` below this (dead or saturated pixels) are treated as
        fully transmitting (transmission 1, zero line integral) rather than dividing by ~0.

    Returns
    -------
    ndarray, float32
        Transmission clipped to ``[MIN_TRANSMISSION, inf)``.

    Raises
    ------
    EngineInputError
        NaN in the projections, or flats not brighter than darks anywhere.
    """
    projections = np.asarray(projections, dtype=np.float32)
    open_beam = np.asarray(flat, dtype=np.float32) - np.asarray(dark, dtype=np.float32)
    dead = open_beam < min_signal
    if np.all(dead):
        raise EngineInputError("the flat field is nowhere brighter than the dark field")
    safe = np.where(dead, np.float32(1.0), open_beam)
    transmission = (projections - dark) / safe
    if np.isnan(transmission).any():
        raise EngineInputError("the projections contain NaN values")
    transmission = np.where(np.broadcast_to(dead, transmission.shape), 1.0, transmission)
    return np.maximum(transmission, MIN_TRANSMISSION).astype(np.float32, copy=False)


def minus_log(transmission: np.ndarray) -> np.ndarray:
    """Line integrals ``-ln(T)`` (T clipped to ``[MIN_TRANSMISSION, inf)``), float32."""
    transmission = np.maximum(np.asarray(transmission, dtype=np.float32), MIN_TRANSMISSION)
    return -np.log(transmission)


def line_integrals(sinograms: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Raw sinograms to line integrals.

    Parameters
    ----------
    sinograms : ndarray, shape (rows, n_angles, cols)
        Raw counts as read by :func:`analysis_engine.io.nxtomo.read_sinograms`.
    flat, dark : ndarray, shape (rows, cols)
        Mean flat and dark fields of the same detector rows.

    Returns
    -------
    ndarray, shape (rows, n_angles, cols), float32
    """
    return minus_log(normalize(sinograms, flat[:, None, :], dark[:, None, :]))
