"""``python -m analysis_engine COMMAND ...``: the engine's command line (see CONTRACTS.md).

Every command prints progress to stderr and ONE JSON object (its summary) as the last line of
stdout. Exit status: 0 done, 2 bad input or options (one clear line on stderr), 1 anything
else. Each stage contributes its commands from ``analysis_engine/<stage>/commands.py``, which
defines ``register(subparsers)``; a registered sub-parser sets ``func`` to a callable taking
the parsed arguments and returning the summary dict.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence

from analysis_engine import __version__
from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import to_jsonable

__all__ = ["main", "build_parser", "progress"]

STAGE_COMMAND_MODULES = (
    "analysis_engine.events.commands",
    "analysis_engine.compton.commands",
    "analysis_engine.tomo.commands",
    "analysis_engine.transport.commands",
    "analysis_engine.registration.commands",
    "analysis_engine.synthetic.commands",
)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # bad options are bad input: exit 2, one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def progress(message: str, fraction: float | None = None) -> None:
    """Write one progress line to stderr (the stdout is reserved for the JSON summary)."""
    prefix = f"[{fraction:5.1%}] " if fraction is not None else ""
    print(f"{prefix}{message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="python -m analysis_engine",
        description="CorreLi analysis engine: correlative Compton imaging + XCT.",
    )
    parser.add_argument("--version", action="version", version=f"analysis_engine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True
    for module_name in STAGE_COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):  # stage not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        summary = args.func(args)
    except EngineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    progress(f"{args.command} finished in {time.perf_counter() - started:.2f} s")
    print(json.dumps(to_jsonable(summary)))
    return 0
