"""Light previews for people looking at data: downsampled planes, contrast windows,
centre-of-rotation candidates, and quick-look summaries of event lists, spectra and tables.

Pure functions on arrays (the files are read by :mod:`analysis_engine.io.slices` and
:mod:`analysis_engine.io.tables`); the platform's slice viewer and dataset pages call them.
"""

from analysis_engine.preview.images import (
    auto_window,
    block_max,
    block_mean,
    block_reduce_3d,
    center_candidates,
    colorize,
    intensity_histogram,
    reconstruct_at_centers,
    view_step,
)
from analysis_engine.preview.summaries import (
    EventsPreview,
    events_preview,
    s_windows_kev,
)

__all__ = [
    "auto_window",
    "block_max",
    "block_mean",
    "block_reduce_3d",
    "center_candidates",
    "colorize",
    "intensity_histogram",
    "reconstruct_at_centers",
    "view_step",
    "EventsPreview",
    "events_preview",
    "s_windows_kev",
]
