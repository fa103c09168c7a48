"""``python -m analysis_engine COMMAND ...``: the engine's command line (docs/formats.md for files).

Every command prints progress to stderr and ONE JSON object (its summary) as the last line of
stdout. Exit status: 0 done, 2 bad input or options (one clear line on stderr), 1 anything
else. The sub-commands are generated from the ``run_*`` functions' signatures and docstrings
(:mod:`analysis_engine.parameters`); :data:`analysis_engine.commands.COMMANDS` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence

from analysis_engine import __version__
from analysis_engine.commands import COMMANDS
from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import to_jsonable

__all__ = ["main", "build_parser", "progress"]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # bad options are bad input: exit 2, one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def progress(fraction: float | None, message: str) -> None:
    """Write one progress line to stderr (stdout is reserved for the JSON summary).

    The signature is the engine's ``progress(fraction, message)`` callback, so this is the
    one adapter every command gets.
    """
    prefix = f"[{fraction:5.1%}] " if fraction is not None else ""
    print(f"{prefix}{message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="python -m analysis_engine",
        description="CorreLi analysis engine: correlative Compton imaging + XCT.",
    )
    parser.add_argument("--version", action="version", version=f"analysis_engine {__version__}")
    sub = parser.add_subparsers(
        dest="command_name", metavar="COMMAND", parser_class=_ArgumentParser
    )
    sub.required = True
    for command in COMMANDS.values():
        command.add_to(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (``--help`` and bad options included)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's --help (0) and bad options (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    started = time.perf_counter()
    try:
        summary = args.command.call(args, progress=progress)
    except EngineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        traceback.print_exc(file=sys.stderr)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    progress(None, f"{args.command_name} finished in {time.perf_counter() - started:.2f} s")
    print(json.dumps(to_jsonable(summary)))
    return 0
