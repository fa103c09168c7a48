"""The ``demo-data`` command: write the digital twin of the paper's beamtime.

``python -m analysis_engine demo-data OUTDIR [--size small|paper] [--seed N]`` (CONTRACTS.md);
the work is :func:`run_demo_data`, which the platform's ``load_demo`` command calls too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

__all__ = ["register", "run_demo_data"]


def run_demo_data(
    outdir: str | os.PathLike,
    *,
    size: str = "small",
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write a complete synthetic beamtime (see :mod:`analysis_engine.synthetic.beamtime`).

    Parameters
    ----------
    outdir : path
        Directory to fill: ``xct/``, ``xcsi/``, ``echem/``, ``manifest.yaml``,
        ``ground_truth.json``.
    size : {"small", "paper"}
        ``small`` generates in seconds and analyses in minutes; ``paper`` uses the paper's
        acquisition (benchmarks).
    seed : int
        Random seed (same seed, same files).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``files`` (paths relative to ``outdir``), ``ground_truth`` (path of
        ``ground_truth.json``), ``outdir``, ``size``, ``seed``, ``bytes`` (total size) and
        ``seconds`` (generation time).
    """
    from pathlib import Path

    from analysis_engine.synthetic.beamtime import make_beamtime

    truth = make_beamtime(outdir, size=size, seed=seed, progress=progress)
    out = Path(outdir)
    return {
        "outdir": str(out),
        "size": size,
        "seed": seed,
        "files": truth["files"],
        "ground_truth": str(out / "ground_truth.json"),
        "bytes": sum((out / f).stat().st_size for f in truth["files"]),
        "seconds": truth["generation_seconds"],
    }


def _handle(args: argparse.Namespace) -> dict[str, Any]:
    from analysis_engine.cli import progress

    return run_demo_data(
        args.outdir,
        size=args.size,
        seed=args.seed,
        progress=lambda fraction, message: progress(message, fraction),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo-data`` command."""
    p = subparsers.add_parser(
        "demo-data",
        help="write the digital twin of the paper's beamtime (with ground_truth.json)",
        description=(
            "A DIT and a slurry-cast cell, charged and discharged: XCT scans (NXtomo), HEXITEC "
            "event files for 3 depth regions, cycling and EIS CSVs, manifest.yaml and "
            "ground_truth.json with every planted value."
        ),
    )
    p.add_argument("outdir", help="output directory")
    p.add_argument(
        "--size",
        choices=("small", "paper", "tiny"),
        default="small",
        help="small (default; minutes end to end), paper (the paper's acquisition, "
        "benchmarks), tiny (tests)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_handle)
