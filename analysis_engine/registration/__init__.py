"""Registration of XCT maps onto XCS-I (Compton) maps and correlation of Li with microstructure.

Paper: Huang et al. 2022, Experimental Section "Correlating XCT with XCS-I"; Tables 1 and 2.

- :mod:`.downsample`: depth slabs of a segmented XCT volume -> porosity / material density
  maps on the Compton grid (exact area weighting).
- :mod:`.align`: rigid + isotropic-scale registration (phase-correlation start, normalised
  gradient fields refinement), quality score, user override.
- :mod:`.correlate`: overlay, per-pixel Pearson/Spearman, binned trend with confidence
  intervals, region-to-region Li gradient, whole-cell comparison table.
- :mod:`.commands`: ``run_register`` / ``run_correlate`` and the CLI commands.
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
from analysis_engine.registration.correlate import (
    RegionCorrelation,
    cell_correlation_summary,
    correlate_maps,
    correlation_figure,
    li_gradient_pct,
    overlay,
    paired_values,
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
    "RegionCorrelation",
    "RegionMaps",
    "RegistrationError",
    "RegistrationResult",
    "SimilarityTransform2D",
    "apply_transform",
    "area_weighted_sum",
    "area_weights",
    "cell_correlation_summary",
    "correlate_maps",
    "correlation_figure",
    "li_gradient_pct",
    "ngf_quality",
    "overlay",
    "paired_values",
    "phase_correlation_guess",
    "region_bounds",
    "region_maps",
    "register_images",
]
