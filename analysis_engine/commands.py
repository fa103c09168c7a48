"""Every command of ``python -m analysis_engine``, each bound to its ``run_*`` function.

The platform's job kinds run the same functions; :func:`command_specs` is what both read, so
the CLI's ``--help`` and the REST API's ``/jobs/kinds/`` describe the same parameters in the
same words (see :mod:`analysis_engine.parameters`).
"""

from __future__ import annotations

from collections.abc import Callable

from analysis_engine.compton.commands import COMMANDS as COMPTON
from analysis_engine.correlation.commands import COMMANDS as CORRELATION
from analysis_engine.errors import EngineInputError
from analysis_engine.events.commands import COMMANDS as EVENTS
from analysis_engine.parameters import Command, ParameterSpec
from analysis_engine.registration.commands import COMMANDS as REGISTRATION
from analysis_engine.synthetic.commands import COMMANDS as SYNTHETIC
from analysis_engine.tomo.commands import COMMANDS as TOMO
from analysis_engine.tomo.segment_commands import COMMANDS as SEGMENTATION
from analysis_engine.transport.commands import COMMANDS as TRANSPORT

__all__ = ["COMMANDS", "command_for_function", "command_specs", "get_command", "parameters_of"]

#: in the order ``--help`` lists them: the analysis chain, then the twin
COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        *EVENTS,
        *COMPTON,
        *TOMO,
        *SEGMENTATION,
        *TRANSPORT,
        *REGISTRATION,
        *CORRELATION,
        *SYNTHETIC,
    )
}


def command_specs() -> dict[str, Command]:
    """Command name -> :class:`~analysis_engine.parameters.Command` (function, options)."""
    return dict(COMMANDS)


def get_command(name: str) -> Command:
    """The command called ``name``; EngineInputError naming the known ones otherwise."""
    try:
        return COMMANDS[name]
    except KeyError:
        raise EngineInputError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}") from None


def command_for_function(function: Callable[..., object]) -> Command | None:
    """The command that runs ``function`` (a job kind's engine function), if any."""
    for command in COMMANDS.values():
        if command.function is function:
            return command
    return None


def parameters_of(name: str) -> tuple[ParameterSpec, ...]:
    """The options of command ``name`` as the CLI and the API present them."""
    return get_command(name).parameters
