"""Correlation of Li stoichiometry (XCS-I) with XCT microstructure, per region and per cell.

Paper: Huang et al. 2022, Experimental Section "Correlating XCT with XCS-I"; Tables 1 and 2.

- :mod:`.correlate`: overlay, per-pixel Pearson/Spearman, binned trend with confidence
  intervals, region-to-region Li gradient, whole-cell comparison table.
- :mod:`.commands`: ``run_correlate`` (the ``correlate`` command and job kind): each XCT
  depth slab registered onto its Compton map (:mod:`analysis_engine.registration`), then
  correlated.
"""

from analysis_engine.correlation.correlate import *  # noqa: F403 - the stage's public names
from analysis_engine.correlation.correlate import __all__ as __all__
