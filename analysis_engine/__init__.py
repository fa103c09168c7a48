"""CorreLi analysis engine: the science of correlative XCS-I + XCT imaging.

Pure functions on numpy arrays, organised by stage (``events``, ``compton``, ``tomo``,
``transport``, ``registration``, ``electrochem``, ``synthetic``), an ``io`` layer that is the
only place touching files, and a command line (``python -m analysis_engine``).
This package never imports Django, Celery or anything under ``platform/``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
