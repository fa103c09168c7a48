"""Every command of ``python -m analysis_engine``, each bound to its ``run_*`` function.

The platform's job kinds run the same functions; :func:`command_specs` is what both read, so
the CLI's ``--help`` and the REST API's ``/jobs/kinds/`` describe the same parameters in the
same words (see :mod:`analysis_engine.parameters`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from analysis_engine.compton.commands import COMMANDS as COMPTON
from analysis_engine.correlation.commands import COMMANDS as CORRELATION
from analysis_engine.electrochem.commands import COMMANDS as ELECTROCHEM
from analysis_engine.errors import EngineInputError
from analysis_engine.events.commands import COMMANDS as EVENTS
from analysis_engine.parameters import (
    Command,
    ParameterSpec,
    describe,
    parameter_docs,
    validate_parameters,
)
from analysis_engine.registration.commands import COMMANDS as REGISTRATION
from analysis_engine.synthetic.commands import COMMANDS as SYNTHETIC
from analysis_engine.tomo.commands import COMMANDS as TOMO
from analysis_engine.tomo.segment_commands import COMMANDS as SEGMENTATION
from analysis_engine.transport.commands import COMMANDS as TRANSPORT

__all__ = [
    "COMMANDS",
    "command_for_function",
    "command_specs",
    "function_parameters",
    "get_command",
    "parameters_of",
    "reference_markdown",
    "validate_function_parameters",
]

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
        *ELECTROCHEM,
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


def function_parameters(function: Callable[..., object]) -> tuple[ParameterSpec, ...]:
    """The options of an engine function as its command presents them (choices, aliases).

    What the platform lists for a job kind: the same specs as ``--help``. A function that no
    command runs is described from its signature and docstring alone.
    """
    command = command_for_function(function)
    return command.parameters if command is not None else describe(function)


def validate_function_parameters(
    function: Callable[..., object], parameters: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Job parameters checked as the command line checks them; see ``validate_parameters``."""
    command = command_for_function(function)
    return validate_parameters(command if command is not None else function, parameters)


def reference_markdown() -> str:
    """``docs/cli.md``: every command with its inputs and options, from the specs."""
    lines = [
        "# Command-line reference",
        "",
        "Generated from the engine's function signatures and docstrings by",
        "`python -m analysis_engine.commands > docs/cli.md` (a test keeps this file in step).",
        "Every command prints progress on stderr and one JSON summary as the last line of",
        "stdout; exit status 0 done, 2 bad input or options (one line on stderr saying what is",
        "wrong), 1 anything else; a failed run leaves no partial output file. The same options",
        "are the job parameters of the REST API (`GET /api/v1/jobs/kinds/`): the name with",
        "underscores, the JSON type shown here.",
        "",
    ]
    for command in COMMANDS.values():
        docs = parameter_docs(command.function)
        usage = " ".join(
            [
                f"python -m analysis_engine {command.name}",
                *(name.upper() for name in command.inputs),
                *(["-o OUT"] if command.output else []),
                "[options]",
            ]
        )
        lines += [f"## `{command.name}`", "", command.summary, "", f"`{usage}`", ""]
        lines += ["| argument | meaning |", "|---|---|"]
        for name in command.inputs:
            lines.append(f"| `{name.upper()}` | {_cell(docs[name])} |")
        if command.output:
            lines.append(f"| `-o`, `--output` | {_cell(docs[command.output])} |")
        lines += ["", "| option | type | default | meaning |", "|---|---|---|---|"]
        for spec in command.parameters:
            flags = ", ".join(f"`{flag}`" for flag in spec.flags)
            kind = spec.type if spec.items is None else f"{spec.type} of {spec.items}"
            if spec.choices is not None:
                kind += ": " + " \\| ".join(str(c) for c in spec.choices)
            if spec.units:
                kind += f" ({spec.units})"
            default = "required" if spec.required else f"`{json.dumps(spec.default)}`"
            lines.append(f"| {flags} | {kind} | {default} | {_cell(spec.help)} |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    print(reference_markdown(), end="")
