"""The ``demo-data`` command: write the digital twin of the paper's beamtime.

``python -m analysis_engine demo-data OUTDIR [--size small|paper] [--seed N]`` (docs/formats.md);
the work is :func:`run_demo_data`, which the platform's ``load_demo`` command calls too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis_engine.parameters import Command, Option
from analysis_engine.synthetic.beamtime import SIZES, make_beamtime
from analysis_engine.synthetic.native_formats import write_native_formats
from analysis_engine.synthetic.paper_scan import write_paper_ground_truth, write_paper_scan

__all__ = ["COMMANDS", "run_demo_data"]


def run_demo_data(
    outdir: str | os.PathLike,
    *,
    size: str = "small",
    seed: int = 0,
    native_formats: bool = False,
    slices: int = 64,
    detector_cols: int = 2048,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write a complete synthetic beamtime (see :mod:`analysis_engine.synthetic.beamtime`).

    Parameters
    ----------
    outdir : path
        Directory to fill: ``xct/``, ``xcsi/``, ``echem/``, ``manifest.yaml``,
        ``ground_truth.json``.
    size : str
        One of :data:`~analysis_engine.synthetic.beamtime.SIZES`: ``small`` generates in
        seconds and analyses in minutes; ``paper`` uses the paper's acquisition (benchmarks);
        ``tiny`` is for tests; ``full`` writes only a paper-geometry XCT scan
        (``xct/paper_scan.nxs``: 3600 projections over 360 deg, off-centre axis for half
        acquisition), cut to ``slices`` detector rows and written band by band
        (:mod:`analysis_engine.synthetic.paper_scan`).
    seed : int
        Random seed (same seed, same files).
    native_formats : bool
        Also write the beamtime as a real one looks: HEXITEC raw ``.bin`` frames with
        per-pixel calibration arrays, ``.hxt`` v3 spectra and Diamond-style NXtomo, with their
        own manifest, under ``OUTDIR/native/`` (see
        :mod:`analysis_engine.synthetic.native_formats` and ``docs/formats.md``).
    slices : int
        Detector rows (slices) of the ``full`` scan (each about 15 MB per 1024 detector
        columns).
    detector_cols : int
        Detector width of the ``full`` scan in pixels (the paper's camera: about 2560).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        ``files`` (paths relative to ``outdir``), ``ground_truth`` (path of
        ``ground_truth.json``), ``outdir``, ``size``, ``seed``, ``bytes`` (total size) and
        ``seconds`` (generation time).
    """
    out = Path(outdir)
    if size == "full":
        scan = write_paper_scan(
            out / "xct" / "paper_scan.nxs",
            slices=slices,
            detector_cols=detector_cols,
            seed=seed,
            progress=progress,
        )
        scan["file"] = "xct/paper_scan.nxs"
        write_paper_ground_truth(out / "ground_truth.json", scan)
        return {
            "outdir": str(out),
            "size": size,
            "seed": seed,
            "files": [scan["file"]],
            "ground_truth": str(out / "ground_truth.json"),
            "bytes": scan["bytes"],
            "seconds": scan["seconds"],
        }
    truth = make_beamtime(outdir, size=size, seed=seed, progress=progress)
    files = list(truth["files"])
    if native_formats:
        files += write_native_formats(out, progress=progress)["files"]
    return {
        "outdir": str(out),
        "size": size,
        "seed": seed,
        "files": files,
        "ground_truth": str(out / "ground_truth.json"),
        "bytes": sum((out / f).stat().st_size for f in files),
        "seconds": truth["generation_seconds"],
    }


COMMANDS = (
    Command(
        "demo-data",
        run_demo_data,
        inputs=("outdir",),
        output=None,
        options={"size": Option(choices=(*SIZES, "full"))},
    ),
)
