"""Fixtures shared by the web tests of the job layer.

``fake_engine`` registers a small stand-in for the ``compton`` engine function, so a test
exercises the platform end to end (registry -> task -> result -> figure) without depending on
the speed of the real engine stage; ``spectra_dataset`` makes the per-pixel spectra dataset it
reads ("li=0.76": the 1 - x the stand-in reports).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest
from jobs import engine_registry as registry
from jobs.models import AnalysisJob, JobStatus

from analysis_engine.errors import EngineInputError


@dataclass
class FakeEngine:
    """What the fixture registered (``kind``) and what the stand-in was called with."""

    kind: registry.JobKind | None = None
    calls: list[dict] = field(default_factory=list)


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()

    def run_fake(
        input_path,
        output_path,
        *,
        scale: float = 1.0,
        fail: str | None = None,
        cancel_mid_run: bool = False,
        mask: str | None = None,
        progress=None,
    ):
        """Stand-in for run_compton: 1 - x is read from the input file ("li=0.76"); a mask
        (``file.h5:/inner``) makes the pixels outside it NaN."""
        text = open(input_path, encoding="utf-8").read()
        li = float(text.split("=", 1)[1]) * scale
        engine.calls.append({"input": input_path, "scale": scale, "mask": mask})
        if fail:
            raise EngineInputError(fail)
        if progress:
            progress(0.5, "fitting pseudo-Voigt peaks")
        if cancel_mid_run:
            job_id = int(output_path.split("/")[-2])
            AnalysisJob.objects.filter(pk=job_id).update(status=JobStatus.CANCELLED)
            progress(0.75, "after cancel")
        li_map = np.full((4, 5), li)
        li_map[0, 0] = np.nan
        inside = np.ones((4, 5), bool)
        if mask is not None:
            path, inner = mask.rsplit(":", 1)
            with h5py.File(path, "r") as f:
                inside = f[inner][()] != 0
            li_map[~inside] = np.nan
        with h5py.File(output_path, "w") as f:
            f["li_stoichiometry"] = li_map
            f["s_parameter"] = 0.650 + 2.309 * li_map
        return {
            "s_total": 0.650 + 2.309 * li,
            "li_total": li,
            "pixels": int(np.isfinite(li_map).sum()),
            "mask": {"given": mask is not None, "pixels_inside": int(inside.sum())},
        }

    engine.kind = registry.JobKind(
        name="compton",
        label="Compton map",
        function=run_fake,
        inputs=(registry.InputSlot("spectra", ("xcs_spectra",)),),
        produces="compton_maps",
        output_name="compton.h5",
        data_parameters={"mask": registry.JOB_KINDS["compton"].data_parameters["mask"]},
    )
    monkeypatch.setitem(registry.JOB_KINDS, "compton", engine.kind)
    return engine


def _spectra_dataset(factories, project, li=0.76, **extra):
    content = f"li={li}".encode()
    return factories.make_dataset(
        project,
        content=content,
        kind="xcs_spectra",
        sha256=hashlib.sha256(content).hexdigest(),
        **extra,
    )


@pytest.fixture
def spectra_dataset():
    """``spectra_dataset(factories, project, li=0.76, **links)``: what ``fake_engine`` reads."""
    return _spectra_dataset
