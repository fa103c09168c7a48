"""Parallel-beam XCT scans of a known volume: projections, flats, darks, noise, rings.

:func:`simulate_scan` turns any (z, y, x) attenuation volume into the images an NXtomo file
holds; :func:`write_synthetic_nxtomo` writes them with :func:`analysis_engine.io.nxtomo.write_nxtomo`.
The geometry is the one of :mod:`analysis_engine.tomo.backends` (astra-toolbox's): slice ``z`` of
the volume is detector row ``z``; the rotation axis passes through the slice centre and hits
the detector at column ``center_of_rotation``. An off-centre 360 deg scan (the paper's double
field of view, "half acquisition") uses a detector narrower than the sample with the axis near
one edge.

Forward projection uses astra-toolbox's area-weighted ``strip`` projector, which differs from
the interpolating back projectors, so tests do not reconstruct with the exact adjoint of the
simulation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from analysis_engine.errors import EngineInputError

__all__ = ["SyntheticScan", "simulate_scan", "write_synthetic_nxtomo", "forward_project"]


@dataclass(frozen=True)
class SyntheticScan:
    """A simulated scan in NXtomo order: darks, flats, projections.

    ``data`` (n, rows, cols) counts, ``image_key`` (n,), ``angles_deg`` (n,),
    ``center_of_rotation`` the true axis position in detector pixels, ``stripe_columns`` the
    detector columns given a gain error (ring artefacts).
    """

    data: np.ndarray
    image_key: np.ndarray
    angles_deg: np.ndarray
    center_of_rotation: float
    stripe_columns: np.ndarray


def forward_project(
    volume: np.ndarray,
    angles_rad: np.ndarray,
    *,
    detector_cols: int | None = None,
    center_of_rotation: float | None = None,
) -> np.ndarray:
    """Line integrals of each slice of ``volume`` (parallel beam).

    Parameters
    ----------
    volume : ndarray, shape (n_z, N, N)
        Linear attenuation coefficient per voxel (1 / voxel).
    angles_rad : ndarray, shape (n_angles,)
    detector_cols
        Detector width in pixels (default ``N``).
    center_of_rotation
        Detector column hit by the rotation axis (default the detector centre).

    Returns
    -------
    ndarray, shape (n_z, n_angles, detector_cols), float32
        Sinograms of line integrals (dimensionless).
    """
    import astra

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or volume.shape[1] != volume.shape[2]:
        raise EngineInputError(f"volume must be (z, N, N), got {volume.shape}")
    size = volume.shape[1]
    cols = int(detector_cols or size)
    axis = 0.5 * (cols - 1) if center_of_rotation is None else float(center_of_rotation)
    angles = np.asarray(angles_rad, dtype=np.float64)
    vectors = np.zeros((angles.size, 6))
    vectors[:, 0] = np.sin(angles)
    vectors[:, 1] = -np.cos(angles)
    shift = 0.5 * (cols - 1) - axis  # detector centre relative to the axis, along u
    vectors[:, 2] = shift * np.cos(angles)
    vectors[:, 3] = shift * np.sin(angles)
    vectors[:, 4] = np.cos(angles)
    vectors[:, 5] = np.sin(angles)
    proj_geom = astra.create_proj_geom("parallel_vec", cols, vectors)
    vol_geom = astra.create_vol_geom(size, size)
    projector = astra.create_projector("strip", proj_geom, vol_geom)
    out = np.empty((volume.shape[0], angles.size, cols), dtype=np.float32)
    try:
        for z, image in enumerate(volume):
            sino_id, sino = astra.create_sino(image, projector)
            astra.data2d.delete(sino_id)
            out[z] = sino
    finally:
        astra.projector.delete(projector)
    return out


def simulate_scan(
    volume: np.ndarray,
    *,
    n_angles: int = 180,
    scan_range_deg: float = 180.0,
    detector_cols: int | None = None,
    center_of_rotation: float | None = None,
    incident_counts: float = 2.0e4,
    dark_counts: float = 100.0,
    n_flats: int = 10,
    n_darks: int = 5,
    stripe_fraction: float = 0.0,
    stripe_amplitude: float = 0.05,
    noise: bool = True,
    seed: int = 0,
) -> SyntheticScan:
    """Simulate the raw images of a parallel-beam scan of ``volume``.

    Parameters
    ----------
    volume : ndarray, shape (n_z, N, N)
        Linear attenuation coefficient per voxel (1 / voxel); slice z becomes detector row z.
    n_angles
        Projections, evenly spaced over ``[0, scan_range_deg)``.
    scan_range_deg
        180 (standard) or 360 (e.g. off-centre half acquisition).
    detector_cols, center_of_rotation
        Detector width and the column the axis hits. For half acquisition pick e.g.
        ``detector_cols = N // 2 + 16`` and ``center_of_rotation = detector_cols - 16.3``.
    incident_counts, dark_counts
        Mean photon counts of the open beam and of the dark current per pixel and image.
    n_flats, n_darks
        Number of flat and dark images.
    stripe_fraction, stripe_amplitude
        Fraction of detector columns whose gain in the projections (not the flats) is off by up
        to ``stripe_amplitude`` (relative): stripes in the sinogram, rings in the slices.
    noise
        Poisson counting noise on every image.
    seed
        Random seed (noise, stripe positions).

    Returns
    -------
    SyntheticScan
        uint16 counts in NXtomo order (darks, flats, projections).
    """
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise EngineInputError(f"volume must be (z, y, x), got shape {volume.shape}")
    if scan_range_deg not in (180.0, 360.0):
        raise EngineInputError("scan_range_deg must be 180 or 360")
    rng = np.random.default_rng(seed)
    n_z = volume.shape[0]
    cols = int(detector_cols or volume.shape[1])
    axis = 0.5 * (cols - 1) if center_of_rotation is None else float(center_of_rotation)
    angles_deg = np.arange(n_angles) * (scan_range_deg / n_angles)
    sinograms = forward_project(
        volume, np.deg2rad(angles_deg), detector_cols=cols, center_of_rotation=axis
    )
    # smooth beam profile: brighter in the middle, as at a real beamline
    u = np.linspace(-1.0, 1.0, cols)
    z = np.linspace(-1.0, 1.0, n_z)
    beam = incident_counts * (1.0 - 0.15 * u[None, :] ** 2) * (1.0 - 0.1 * z[:, None] ** 2)
    gain = np.ones(cols, dtype=np.float64)
    stripe_columns = np.zeros(0, dtype=int)
    if stripe_fraction > 0:
        n_stripes = max(1, int(round(stripe_fraction * cols)))
        stripe_columns = np.sort(rng.choice(np.arange(2, cols - 2), n_stripes, replace=False))
        signs = rng.choice([-1.0, 1.0], n_stripes)
        gain[stripe_columns] += signs * stripe_amplitude * rng.uniform(0.5, 1.0, n_stripes)

    def counts(expected: np.ndarray) -> np.ndarray:
        values = rng.poisson(expected) if noise else np.rint(expected)
        return np.clip(values, 0, 65535).astype(np.uint16)

    darks = [counts(np.full((n_z, cols), dark_counts)) for _ in range(n_darks)]
    flats = [counts(beam + dark_counts) for _ in range(n_flats)]
    projections = np.empty((n_angles, n_z, cols), dtype=np.uint16)
    for a in range(n_angles):
        transmitted = beam * gain[None, :] * np.exp(-sinograms[:, a, :].astype(np.float64))
        projections[a] = counts(transmitted + dark_counts)
    data = np.concatenate(
        [
            np.asarray(darks).reshape(-1, n_z, cols),
            np.asarray(flats).reshape(-1, n_z, cols),
            projections,
        ]
    )
    image_key = np.concatenate([np.full(n_darks, 2), np.full(n_flats, 1), np.zeros(n_angles)])
    angles = np.concatenate([np.zeros(n_darks + n_flats), angles_deg])
    return SyntheticScan(
        data=data,
        image_key=image_key.astype(np.int32),
        angles_deg=angles,
        center_of_rotation=axis,
        stripe_columns=stripe_columns,
    )


def write_synthetic_nxtomo(
    path: str | os.PathLike,
    volume: np.ndarray,
    *,
    pixel_size_m: float | None = 7.91e-6,
    **options,
) -> SyntheticScan:
    """Simulate a scan of ``volume`` (see :func:`simulate_scan` for ``options``) and write it
    as NXtomo to ``path``; returns the :class:`SyntheticScan` (with the true axis)."""
    from analysis_engine.io.nxtomo import write_nxtomo

    scan = simulate_scan(volume, **options)
    write_nxtomo(path, scan.data, scan.image_key, scan.angles_deg, pixel_size_m=pixel_size_m)
    return scan
