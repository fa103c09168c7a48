"""The command line is generated from the ``run_*`` signatures and docstrings (issue 17).

Expected values come from another route than the generator: the signatures read with
``inspect`` directly, the docstrings read as plain text, option lists written out by hand from
CONTRACTS.md, and a toy function whose specs are written here by hand.
"""

from __future__ import annotations

import argparse
import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from analysis_engine.cli import build_parser, main
from analysis_engine.commands import (
    COMMANDS,
    command_for_function,
    function_parameters,
    get_command,
    reference_markdown,
    validate_function_parameters,
)
from analysis_engine.errors import EngineInputError
from analysis_engine.events.commands import run_events
from analysis_engine.parameters import Command, Option, ParameterSpec, describe, validate_parameters

#: every command of the engine, written out so that a lost command fails here
EXPECTED_COMMANDS = {
    "events",
    "events-calibrate",
    "compton",
    "compton-calibrate",
    "compton-calibrate-spectra",
    "reconstruct",
    "segment",
    "tortuosity",
    "eis-sim",
    "transport-table",
    "register",
    "correlate",
    "electrochem",
    "demo-data",
}

#: the flags CONTRACTS.md promises, per command
CONTRACT_FLAGS = {
    "events": ["--bin-width-kev", "--range-kev", "--charge-sharing"],
    "compton": ["--incident-kev", "--angle-deg", "--calibration", "--attenuation", "--mask"],
    "reconstruct": ["--center", "--half-acquisition", "--ring-removal", "--backend", "--slices"],
    "segment": ["--regions", "--thickness-axis"],
    "tortuosity": ["--axis", "--backend"],
    "eis-sim": ["--axis", "--d-electrolyte"],
    "register": ["--moving-pixel-um", "--fixed-pixel-um"],
    "demo-data": ["--seed", "--size"],
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _words(text: str) -> str:
    """Plain words of a docstring or help text: markup and line breaks removed."""
    text = re.sub(r":\w+:`~?(?:\w+\.)*(\w+)`", r"\1", text)
    return " ".join(text.replace("``", "").replace("%%", "%").split())


def _docstrings(function: Callable, seen: set | None = None) -> str:
    """The function's docstring and those of the functions it names (plain words)."""
    seen = set() if seen is None else seen
    seen.add(function)
    doc = inspect.getdoc(function) or ""
    texts = [doc]
    for reference in re.findall(r":(?:func|meth):`~?([\w.]+)`", doc):
        name = reference.rsplit(".", 1)[-1]
        module = inspect.getmodule(function)
        target = getattr(module, name, None)
        if target is None and "." in reference:
            module_name, _, attribute = reference.rpartition(".")
            target = getattr(__import__(module_name, fromlist=[attribute]), attribute, None)
        if callable(target) and target not in seen:
            texts.append(_docstrings(target, seen))
    return _words(" ".join(texts))


def _keyword_only(function: Callable) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "progress"
    }


def test_every_command_is_generated():
    assert set(COMMANDS) == EXPECTED_COMMANDS
    assert set(_subparsers()) == EXPECTED_COMMANDS
    for command in COMMANDS.values():
        assert command_for_function(command.function) is command
    with pytest.raises(EngineInputError, match="unknown command 'recon'"):
        get_command("recon")


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_cli_options_are_the_signature(name):
    command = COMMANDS[name]
    parser = _subparsers()[name]
    signature = inspect.signature(command.function)
    keyword_only = _keyword_only(command.function)
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}

    # Positional inputs then the output, exactly as the function takes them.
    positional = [a.dest for a in parser._actions if not a.option_strings]
    assert positional == list(command.inputs)
    takes = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert takes == [*command.inputs, *([command.output] if command.output else [])]
    if command.output:
        assert actions[command.output].option_strings == ["-o", "--output"]

    # Options: one per keyword-only parameter, flag = name with dashes, same default.
    options = {dest for dest, a in actions.items() if a.option_strings and dest != command.output}
    assert options == set(keyword_only)
    for dest, parameter in keyword_only.items():
        action = actions[dest]
        assert action.option_strings[0] == "--" + dest.replace("_", "-")
        if parameter.default is inspect.Parameter.empty:
            assert action.required
        else:
            assert not action.required
            assert action.default == parameter.default


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_help_text_comes_from_the_docstring(name, capsys):
    command = COMMANDS[name]
    docs = _docstrings(command.function)
    assert main([name, "--help"]) == 0
    shown = _words(capsys.readouterr().out)
    for spec in command.parameters:
        assert spec.help, f"{name} --{spec.name} has no docstring entry"
        assert _words(spec.help) in docs
        assert _words(spec.help) in shown
        assert spec.flags[0] in shown
    for argument in (*command.inputs, *([command.output] if command.output else [])):
        text = next(a.help for a in _subparsers()[name]._actions if a.dest == argument)
        assert text and _words(text) in docs


def test_contract_flags_exist():
    for name, flags in CONTRACT_FLAGS.items():
        strings = {s for a in _subparsers()[name]._actions for s in a.option_strings}
        missing = set(flags) - strings
        assert not missing, f"{name} lost contract flags {missing}"


def test_docs_cli_reference_is_generated_from_the_specs():
    written = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    assert written == reference_markdown(), (
        "docs/cli.md is out of step: python -m analysis_engine.commands > docs/cli.md"
    )
    for command in COMMANDS.values():
        assert f"## `{command.name}`" in written
        for spec in command.parameters:
            assert f"`{spec.flags[0]}`" in written


def test_python_dash_m_help_runs():
    done = subprocess.run(
        [sys.executable, "-m", "analysis_engine", "correlate", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--n-bins" in done.stdout and "COMPTON_PATHS" in done.stdout


def _arguments(argv: list[str]) -> tuple[list, dict]:
    args = build_parser().parse_args(argv)
    return args.command.arguments(args)


def test_command_line_text_becomes_engine_values():
    _, kw = _arguments(["events", "in.h5", "-o", "o.h5", "--range-kev", "0", "100"])
    assert kw["range_kev"] == (0.0, 100.0) and kw["bin_width_kev"] == 0.05
    pos, kw = _arguments(["tortuosity", "v.npy", "-o", "t.h5", "--axis", "x", "--box", *"041526"])
    assert pos == ["v.npy", "t.h5"]
    assert kw["axis"] == 2 and kw["box"] == ((0, 4), (1, 5), (2, 6))
    _, kw = _arguments(["eis-sim", "v.npy", "-o", "e.h5", "--axis", "1", "--d-electrolyte", "2e-7"])
    assert kw["d_electrolyte_cm2_s"] == 2e-7 and kw["axis"] == 1
    _, kw = _arguments(
        ["reconstruct", "s.nxs", "-o", "r.h5", "--slices", "4:9", "--center", "47.5"]
    )
    assert kw["slices"] == (4, 9) and kw["center"] == 47.5 and kw["ring_removal"] is False
    _, kw = _arguments(["reconstruct", "s.nxs", "-o", "r.h5", "--ring-removal"])
    assert kw["center"] == "auto" and kw["ring_removal"] is True
    _, kw = _arguments(["segment", "v.npy", "-o", "s.h5", "--mask-threshold", "0.3,0.5"])
    assert kw["mask_threshold"] == (0.3, 0.5) and kw["pore_threshold"] == "otsu"
    _, kw = _arguments(["segment", "v.npy", "-o", "s.h5", "--pore-smoothing", "median"])
    assert kw["pore_smoothing"] == "median" and kw["thickness_axis"] == 0
    _, kw = _arguments(["compton", "s.h5", "-o", "c.h5", "--no-fit-peaks", "--calibration", "1,2"])
    assert kw["fit_peaks"] is False and kw["calibration"] == "1,2"
    pos, kw = _arguments(["correlate", "x.h5", "a.h5", "b.h5", "-o", "c.h5", "--no-allow-scale"])
    assert pos == ["x.h5", ["a.h5", "b.h5"], "c.h5"] and kw["allow_scale"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tortuosity", "v.npy", "-o", "t.h5", "--axis", "w"], "axis must be 0, 1, 2 or z, y, x"),
        (["tortuosity", "v.npy", "-o", "t.h5"], "the following arguments are required: --axis"),
        (["reconstruct", "s.nxs", "-o", "r.h5", "--slices", "x"], "--slices must be START:STOP"),
        (["events", "e.h5", "-o", "o.h5", "--bin-width-kev", "wide"], "expected a number"),
        (["demo-data", "out", "--size", "huge"], "invalid choice: 'huge'"),
        (["segment", "v.npy", "-o", "s.h5", "--regions", "2.5"], "expected a whole number"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if "error" in line]
    assert len(lines) == 1 and message in lines[0]


# ------------------------------------------------------------------ the generator on a toy


def _toy(
    input_path: str,
    output_path: str,
    *,
    width_kev: float,
    window_au: tuple[float, float] = (1.0, 5.0),
    mode: str = "fast",
    label: str | float = "otsu",
    smooth: bool = True,
    axis: int = 0,
    progress: Callable | None = None,
) -> dict:
    """Toy engine function.

    Parameters
    ----------
    input_path
        Input file.
    output_path
        Output file.
    width_kev : float
        Bin width.
    window_au
        See :func:`_toy_reference`.
    mode : {"fast", "exact"}
        How to run.
    label : "otsu" or float
        Threshold method or grey level.
    smooth, axis
        Shared words.
    progress
        Callback.
    """
    return {}


def _toy_reference(*, window_au: tuple[float, float] = (1.0, 5.0)) -> None:
    """Reference.

    Parameters
    ----------
    window_au : (float, float)
        The |p_z| window of ``S``.
    """


def test_describe_a_hand_written_function():
    expected = (
        ParameterSpec("width_kev", "number", None, True, "Bin width.", units="keV",
                      flags=("--width-kev",)),
        ParameterSpec("window_au", "array", [1.0, 5.0], False, "The |p_z| window of S.",
                      units="a.u.", items="number", length=2, flags=("--window-au",)),
        ParameterSpec("mode", "string", "fast", False, "How to run.",
                      choices=("fast", "exact"), flags=("--mode",)),
        ParameterSpec("label", "string|number", "otsu", False,
                      "Threshold method or grey level.", flags=("--label", "--threshold")),
        ParameterSpec("smooth", "boolean", True, False, "Shared words.", flags=("--smooth",)),
        ParameterSpec("axis", "integer", 0, False, "Shared words.", flags=("--axis",)),
    )  # fmt: skip
    assert describe(_toy, options={"label": Option(aliases=("--threshold",))}) == expected
    assert expected[1].as_dict()["default"] == [1.0, 5.0]

    command = Command("toy", _toy, inputs=("input_path",), options={"mode": Option()})
    subparsers = argparse.ArgumentParser().add_subparsers()
    parser = command.add_to(subparsers)
    args = parser.parse_args(
        ["in", "-o", "out", "--width-kev", "0.1", "--no-smooth", "--axis", "y", "--label", "2"]
    )
    positional, keywords = command.arguments(args)
    assert positional == ["in", "out"]
    assert keywords == {
        "width_kev": 0.1,
        "window_au": (1.0, 5.0),
        "mode": "fast",
        "label": 2.0,
        "smooth": False,
        "axis": 1,
    }
    with pytest.raises(TypeError, match="declares"):
        Command("bad", _toy, inputs=("input_path", "output_path")).check()


def test_validate_parameters():
    assert validate_parameters(_toy, {"width_kev": 1, "window_au": [0, 2]}) == {
        "width_kev": 1,
        "window_au": (0, 2),
    }
    for parameters, message in (
        ({"width_kev": 1, "colour": 2}, "_toy has no option colour"),
        ({}, "missing required option(s) width_kev"),
        ({"width_kev": "wide"}, "option width_kev expects number, got 'wide'"),
        ({"width_kev": True}, "option width_kev expects number"),
        ({"width_kev": 1, "mode": "slow"}, "option mode must be one of fast, exact"),
        ({"width_kev": 1, "window_au": [1, 2, 3]}, "option window_au expects 2 values"),
        ({"width_kev": 1, "window_au": ["a", "b"]}, "option window_au expects numbers"),
        ({"width_kev": 1, "smooth": "yes"}, "option smooth expects boolean"),
    ):
        with pytest.raises(EngineInputError, match=re.escape(message)):
            validate_parameters(_toy, parameters)
    # a real command: the API name is the CLI name without dashes
    cleaned = validate_parameters(COMMANDS["eis-sim"], {"axis": 0, "omega_range": [0.1, 10]})
    assert cleaned == {"axis": 0, "omega_range": (0.1, 10)}


def test_the_platform_sees_the_commands_specs():
    specs = {s.name: s for s in function_parameters(run_events)}
    assert specs["charge_sharing"].choices == ("paper", "discriminate", "add", "none")
    assert function_parameters(_toy)[0].name == "width_kev"  # no command: signature alone
    with pytest.raises(EngineInputError, match="charge_sharing must be one of paper"):
        validate_function_parameters(run_events, {"charge_sharing": "magic"})
    assert validate_function_parameters(run_events, {"range_kev": [0, 100]}) == {
        "range_kev": (0, 100)
    }
