"""Registration of XCT maps onto XCS-I (Compton) maps.

Paper: Huang et al. 2022, Experimental Section "Correlating XCT with XCS-I"; Tables 1 and 2.

- :mod:`.downsample`: depth slabs of a segmented XCT volume -> porosity / material density
  maps on the Compton grid (exact area weighting).
- :mod:`.align`: rigid + isotropic-scale registration (phase-correlation start, normalised
  gradient fields refinement), quality score, user override.
- :mod:`.commands`: ``run_register`` (the ``register`` command and job kind).

The correlation of Li with porosity that builds on it is :mod:`analysis_engine.correlation`.
"""

from analysis_engine.registration.align import (
    RegistrationError,
    RegistrationResult,
    SimilarityTransform2D,
    apply_transform,
    ngf_quality,
    phase_correlation_guess,
    register_images,
)
from analysis_engine.registration.downsample import (
    COMPTON_PIXEL_UM,
    RegionMaps,
    area_weighted_sum,
    area_weights,
    region_bounds,
    region_maps,
)

__all__ = [
    "COMPTON_PIXEL_UM",
    "RegionMaps",
    "RegistrationError",
    "RegistrationResult",
    "SimilarityTransform2D",
    "apply_transform",
    "area_weighted_sum",
    "area_weights",
    "ngf_quality",
    "phase_correlation_guess",
    "region_bounds",
    "region_maps",
    "register_images",
]
