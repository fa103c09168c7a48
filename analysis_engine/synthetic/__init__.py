"""Synthetic data with known ground truth: detector models and a digital twin of the beamtime.

Each module builds data in the formats of ``docs/formats.md`` together with the truth it was drawn
from, so tests and demonstrations can check the analysis chain against known answers.
"""

__all__ = []
