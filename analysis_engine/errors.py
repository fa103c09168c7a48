"""Exceptions the engine raises on purpose, with messages written for scientists."""

__all__ = ["EngineError", "EngineInputError", "ConvergenceError"]


class EngineError(Exception):
    """Base class of every deliberate engine error."""


class EngineInputError(EngineError, ValueError):
    """The input data or options are wrong; the message says what and what was expected.

    The command line maps it to exit status 2; the web layer to a 400 or a failed job with
    this message.
    """


class ConvergenceError(EngineError, RuntimeError):
    """An iterative solver or fit did not converge; the message reports how far it got."""
