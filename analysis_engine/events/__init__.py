"""HEXITEC event processing: clustering, charge-sharing correction, per-pixel spectra, calibration.

The first stage of the Compton imaging chain (``SCIENCE.md``, "Event processing").
"""

from analysis_engine.events.clustering import (
    CHARGE_SHARING_MODES,
    EnergyBinning,
    EventHistograms,
    SpectrumAccumulator,
    histogram_events,
    histogram_frames,
    threshold_in_adu,
)

__all__ = [
    "CHARGE_SHARING_MODES",
    "EnergyBinning",
    "EventHistograms",
    "SpectrumAccumulator",
    "histogram_events",
    "histogram_frames",
    "threshold_in_adu",
]
