"""Pinhole-camera geometry of an XCS-I detector: the scattering angle of every pixel.

The sample is imaged through a pinhole onto the pixel detector. A pixel at offset ``d`` from the
detector centre along the beam direction sees photons scattered at
``theta = theta0 + atan(d / pinhole_to_detector)``; across the paper's detector (80 x 0.25 mm at
150 mm) that is theta0 +- 3.8 deg, which moves the Compton line by about +-1.2 keV at 115 keV,
more than a valence window. The p_z scale (Eq. 6) and the S windows are therefore per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis_engine.compton.kinematics import compton_energy_kev
from analysis_engine.errors import EngineInputError

__all__ = [
    "GEOMETRY_KEYS",
    "PAPER_GEOMETRY",
    "InstrumentGeometry",
    "geometry_from_mapping",
    "pixel_angles_deg",
    "line_energy_map_kev",
]

GEOMETRY_KEYS = (
    "incident_energy_kev",
    "scattering_angle_deg",
    "sample_to_pinhole_mm",
    "pinhole_to_detector_mm",
    "pixel_pitch_mm",
    "beam_axis",
)


@dataclass(frozen=True)
class InstrumentGeometry:
    """Pinhole geometry of one XCS-I acquisition.

    Attributes
    ----------
    incident_energy_kev : float
        Beam energy E1.
    scattering_angle_deg : float
        Scattering angle seen by the detector centre (theta0).
    sample_to_pinhole_mm, pinhole_to_detector_mm : float
        Distances; their ratio is the magnification (pixel size at the sample = pitch *
        sample_to_pinhole / pinhole_to_detector).
    pixel_pitch_mm : float
        Detector pixel pitch.
    beam_axis : {"col", "row"}
        Detector axis along which the scattering angle changes (the beam direction's image).
    """

    incident_energy_kev: float = 115.0
    scattering_angle_deg: float = 90.0
    sample_to_pinhole_mm: float = 160.0
    pinhole_to_detector_mm: float = 150.0
    pixel_pitch_mm: float = 0.25
    beam_axis: str = "col"

    def __post_init__(self) -> None:
        for name in ("incident_energy_kev", "sample_to_pinhole_mm", "pinhole_to_detector_mm"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise EngineInputError(f"geometry: {name} must be a number > 0, got {value!r}")
        if not (
            isinstance(self.pixel_pitch_mm, int | float)
            and math.isfinite(self.pixel_pitch_mm)
            and self.pixel_pitch_mm > 0
        ):
            raise EngineInputError(
                f"geometry: pixel_pitch_mm must be a number > 0, got {self.pixel_pitch_mm!r}"
            )
        angle = self.scattering_angle_deg
        if not (isinstance(angle, int | float) and math.isfinite(angle) and 0 < angle < 180):
            raise EngineInputError(
                f"geometry: scattering_angle_deg must be within 0..180 deg, got {angle!r}"
            )
        if self.beam_axis not in ("col", "row"):
            raise EngineInputError(
                f"geometry: beam_axis must be 'col' or 'row', got {self.beam_axis!r}"
            )

    @property
    def pixel_at_sample_mm(self) -> float:
        """Pixel size projected onto the sample (paper: 0.25 mm -> about 0.27 mm)."""
        return self.pixel_pitch_mm * self.sample_to_pinhole_mm / self.pinhole_to_detector_mm

    def as_dict(self) -> dict[str, Any]:
        """Plain dict with exactly :data:`GEOMETRY_KEYS`."""
        return asdict(self)


#: The paper's set-up (Huang et al. 2022): 160 mm / 150 mm, 0.25 mm pitch, 115 keV at 90 deg.
PAPER_GEOMETRY = InstrumentGeometry()


def geometry_from_mapping(values: Mapping[str, Any]) -> InstrumentGeometry:
    """Build and check a geometry from a JSON object / HDF5 attributes.

    Every key of :data:`GEOMETRY_KEYS` is required; unknown keys are refused, so a typo does not
    silently fall back to a default.

    Raises
    ------
    EngineInputError
        Naming the missing, unknown or impossible field.
    """
    if not isinstance(values, Mapping):
        raise EngineInputError(
            "geometry must be a JSON object with keys " + ", ".join(GEOMETRY_KEYS)
        )
    unknown = sorted(set(values) - set(GEOMETRY_KEYS))
    if unknown:
        raise EngineInputError(
            f"geometry: unknown field {unknown[0]!r}; expected {', '.join(GEOMETRY_KEYS)}"
        )
    missing = [k for k in GEOMETRY_KEYS if k not in values]
    if missing:
        raise EngineInputError(f"geometry: missing field {missing[0]!r}")
    parsed: dict[str, Any] = {}
    for key in GEOMETRY_KEYS:
        value = values[key]
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        if key == "beam_axis":
            parsed[key] = str(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EngineInputError(f"geometry: {key} must be a number, got {value!r}")
        parsed[key] = float(value)
    return InstrumentGeometry(**parsed)


def pixel_angles_deg(geometry: InstrumentGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Scattering angle of every pixel, degrees, shape ``shape`` (rows, cols).

    ``theta(j) = theta0 + atan((j - (n - 1) / 2) * pitch / pinhole_to_detector)`` for the pixel
    index ``j`` along ``geometry.beam_axis`` (n pixels along it); constant along the other axis.

    Raises
    ------
    EngineInputError
        An angle at or beyond 0 or 180 deg.
    """
    rows, cols = shape
    n = cols if geometry.beam_axis == "col" else rows
    offset_mm = (np.arange(n) - (n - 1) / 2.0) * geometry.pixel_pitch_mm
    theta = geometry.scattering_angle_deg + np.rad2deg(
        np.arctan(offset_mm / geometry.pinhole_to_detector_mm)
    )
    if theta.min() <= 0 or theta.max() >= 180:
        raise EngineInputError(
            "geometry: scattering_angle_deg with this detector half-width puts edge pixels at "
            f"{theta.min():.1f}..{theta.max():.1f} deg, outside 0..180 deg"
        )
    if geometry.beam_axis == "col":
        return np.broadcast_to(theta[None, :], (rows, cols)).copy()
    return np.broadcast_to(theta[:, None], (rows, cols)).copy()


def line_energy_map_kev(geometry: InstrumentGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Compton line energy (electron at rest) of every pixel, keV, shape (rows, cols)."""
    theta = pixel_angles_deg(geometry, shape)
    e1 = geometry.incident_energy_kev
    return np.vectorize(lambda t: compton_energy_kev(e1, t))(theta)
