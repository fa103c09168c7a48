"""XCT reconstruction (and segmentation) from NXtomo.

Reconstruction modules: ``preprocess`` (flat/dark, minus log), ``center`` (centre of rotation),
``rings`` (stripe removal, Vo 2018), ``stitch`` (360 -> 180 deg half acquisition, Vo 2021),
``backends`` (FBP behind one interface) and ``commands`` (the ``reconstruct`` command and its
per-chunk form for the platform).
"""

from analysis_engine.tomo.backends import available_backends, default_backend, fbp
from analysis_engine.tomo.center import find_center_of_rotation
from analysis_engine.tomo.preprocess import line_integrals, normalize
from analysis_engine.tomo.rings import remove_rings
from analysis_engine.tomo.stitch import convert_360_to_180, find_half_acquisition_center

__all__ = [
    "available_backends",
    "convert_360_to_180",
    "default_backend",
    "fbp",
    "find_center_of_rotation",
    "find_half_acquisition_center",
    "line_integrals",
    "normalize",
    "remove_rings",
]
