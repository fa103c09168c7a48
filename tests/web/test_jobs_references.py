"""Job parameters name data by id, never by server path (issue: a stranger read another
project's Li map by giving its file path as a compton ``mask``).

Every parameter of every job kind (read from the engine signatures, so a new option is covered
the day it appears) is tried with absolute paths, ``..``, another project's result path and
another project's ids: each answers 400 or 404, no job is created, and the answer names nothing
of the other project (another project's id answers exactly like an id that does not exist).
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from django.conf import settings
from jobs import engine_registry as registry
from jobs import references
from jobs.models import AnalysisJob, Result

from analysis_engine.io.sniff import DATASET_KINDS

MISSING_ID = 987654


def _h5(path, datasets: dict) -> bytes:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path.read_bytes()


def _dataset(factories, project, kind, content=b"placeholder", **extra):
    return factories.make_dataset(
        project, content=content, kind=kind, sha256=hashlib.sha256(content).hexdigest(), **extra
    )


def _result(project, user, job_kind: str, tmp_path, datasets=None) -> Result:
    """A succeeded job of ``job_kind`` with a small HDF5 output (what the worker leaves)."""
    job = AnalysisJob.objects.create(
        project=project, kind=job_kind, job_key=job_kind, created_by=user, status="succeeded"
    )
    out = settings.MEDIA_ROOT / "results" / str(project.pk) / str(job.pk)
    out.mkdir(parents=True, exist_ok=True)
    content = _h5(out / "out.h5", datasets or {"li_stoichiometry": np.full((80, 80), 0.7)})
    return Result.objects.create(
        project=project,
        job=job,
        kind=job_kind,
        output_file=f"results/{project.pk}/{job.pk}/out.h5",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )


def _producer(data_kind: str) -> str:
    return next(k.name for k in registry.JOB_KINDS.values() if k.produces == data_kind)


def _inputs_for(kind, project, user, factories, tmp_path) -> dict:
    """A request body whose inputs fit ``kind`` (so only the parameters can be refused)."""
    datasets, results = [], []
    for slot in kind.inputs:
        accepts = slot.accepts[0]
        if accepts in DATASET_KINDS:
            datasets.append(
                _dataset(factories, project, accepts, f"{kind.name} {accepts}".encode())
            )
        else:
            results.append(_result(project, user, _producer(accepts), tmp_path))
    return {
        "kind": kind.name,
        "inputs": [d.pk for d in datasets],
        "input_results": [r.pk for r in results],
    }


@pytest.fixture
def foreign(outsider, factories, tmp_path):
    """Another project's dataset and Compton result (the attacker knows their ids and paths)."""
    other = outsider.memberships.get().project
    ds = _dataset(factories, other, "image", b"their secret map", name="their-secret-map")
    result = _result(other, outsider, "compton", tmp_path)
    return {"project": other, "dataset": ds, "result": result}


def _attacks(foreign) -> dict[str, object]:
    result = foreign["result"]
    relative = result.output_file.name
    return {
        "absolute path": "/etc/passwd",
        "dotdot": "../../../../etc/passwd",
        "their result path": f"{relative}:/li_stoichiometry",
        "their absolute result path": f"{result.output_file.path}:/li_stoichiometry",
        "their dataset id": {"dataset": foreign["dataset"].pk},
        "their result id": {"result": result.pk, "path": "/li_stoichiometry"},
        "missing dataset id": {"dataset": MISSING_ID},
        "missing result id": {"result": MISSING_ID, "path": "/li_stoichiometry"},
        "path in a reference": {"dataset": 1, "path": "/../../etc/passwd"},
    }


def _text(response) -> str:
    return response.content.decode(errors="replace")


@pytest.mark.parametrize("kind_name", list(registry.JOB_KINDS))
def test_every_parameter_refuses_paths_and_foreign_ids(
    kind_name, project, analyst, outsider, foreign, api_as, factories, tmp_path
):
    kind = registry.JOB_KINDS[kind_name]
    api = api_as(analyst)
    body = _inputs_for(kind, project, analyst, factories, tmp_path)
    # a plain value of each required option's type (e.g. compton_calibrate's one_minus_x list)
    required = {
        spec.name: [0] if spec.type == "array" else 0
        for spec in registry.parameter_specs(kind)
        if spec.required
    }
    # the request is otherwise good: without the attack it is accepted
    ok = api.post("/api/v1/jobs/", {**body, "parameters": required}, format="json")
    assert ok.status_code == 202, ok.content
    jobs_before = AnalysisJob.objects.count()

    secrets = [foreign["project"].name, foreign["dataset"].name, str(settings.MEDIA_ROOT)]
    for name in registry.allowed_parameters(kind):
        for label, value in _attacks(foreign).items():
            parameters = {**required, name: value}
            r = api.post("/api/v1/jobs/", {**body, "parameters": parameters}, format="json")
            assert r.status_code in (400, 404), (name, label, r.status_code, r.content)
            assert not any(s in _text(r) for s in secrets), (name, label, _text(r))
        # another project's id reads exactly like an id that does not exist
        if name in kind.data_parameters:
            theirs = api.post(
                "/api/v1/jobs/",
                {**body, "parameters": {**required, name: {"dataset": foreign["dataset"].pk}}},
                format="json",
            )
            missing = api.post(
                "/api/v1/jobs/",
                {**body, "parameters": {**required, name: {"dataset": MISSING_ID}}},
                format="json",
            )
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["detail"].replace(str(foreign["dataset"].pk), "N") == (
                missing.json()["detail"].replace(str(MISSING_ID), "N")
            )
    assert AnalysisJob.objects.count() == jobs_before


def test_pipeline_stage_parameters_are_checked_the_same_way(
    project, analyst, foreign, api_as, factories
):
    cell = factories.make_cell(project)
    _dataset(factories, project, "xcs_spectra", b"spectra", cell=cell, region=1)
    api = api_as(analyst)
    before = AnalysisJob.objects.count()
    for value, code in (
        ({"result": foreign["result"].pk, "path": "/li_stoichiometry"}, 404),
        ("/etc/passwd", 400),
        ("../x.h5:/li_stoichiometry", 400),
    ):
        r = api.post(
            "/api/v1/jobs/",
            {"kind": "pipeline", "cell": cell.pk, "parameters": {"compton": {"mask": value}}},
            format="json",
        )
        assert r.status_code == code, r.content
    r = api.post(
        "/api/v1/jobs/",
        {"kind": "pipeline", "cell": cell.pk, "parameters": {"compton": "/etc/passwd"}},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert AnalysisJob.objects.count() == before


def test_own_result_is_resolved_to_its_file_and_checked_against_what_it_holds(
    project, analyst, api_as, factories, tmp_path
):
    api = api_as(analyst)
    spectra = _dataset(factories, project, "xcs_spectra", b"spectra")
    own = _result(project, analyst, "compton", tmp_path)

    r = api.post(
        "/api/v1/jobs/",
        {"kind": "compton", "inputs": [spectra.pk], "parameters": {"mask": {"result": own.pk}}},
        format="json",
    )
    assert r.status_code == 202, r.content  # a whole file (its only 2D dataset) is fine
    job = AnalysisJob.objects.get(pk=r.json()["id"])
    assert job.parameters == {"mask": {"result": own.pk}}  # stored as a reference
    options, labels = references.resolve(
        registry.JOB_KINDS["compton"], job.parameters, project=project
    )
    assert options["mask"] == own.output_file.path
    assert labels[own.output_file.path].startswith(f"result {own.pk}")

    wrong = api.post(
        "/api/v1/jobs/",
        {
            "kind": "compton",
            "inputs": [spectra.pk],
            "parameters": {"mask": {"result": own.pk, "path": "/no_such_map"}},
        },
        format="json",
    )
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == (
        f"result {own.pk} holds no dataset /no_such_map; it holds /li_stoichiometry"
    )
    good = api.post(
        "/api/v1/jobs/",
        {
            "kind": "compton",
            "inputs": [spectra.pk],
            "parameters": {"mask": {"result": own.pk, "path": "/li_stoichiometry"}},
        },
        format="json",
    )
    assert good.status_code == 202, good.content
    job = AnalysisJob.objects.get(pk=good.json()["id"])
    options, _ = references.resolve(registry.JOB_KINDS["compton"], job.parameters, project=project)
    assert options["mask"] == f"{own.output_file.path}:/li_stoichiometry"
    # a different mask is a different job (its checksum is in the job key)
    assert good.json()["job_key"] != r.json()["job_key"]


def test_reference_of_the_wrong_kind_or_an_unready_dataset_is_a_400(
    project, analyst, api_as, factories
):
    api = api_as(analyst)
    spectra = _dataset(factories, project, "xcs_spectra", b"spectra")
    projections = _dataset(factories, project, "xct_projections", b"scan")
    pending = _dataset(factories, project, "image", b"half uploaded", status="uploading")
    for ref, words in (
        ({"dataset": projections.pk}, "is xct_projections"),
        ({"dataset": pending.pk}, "not ready"),
        ({"dataset": "12"}, "positive integer"),
        ({"dataset": spectra.pk, "result": 1}, '{"dataset": ID}'),
    ):
        r = api.post(
            "/api/v1/jobs/",
            {"kind": "compton", "inputs": [spectra.pk], "parameters": {"mask": ref}},
            format="json",
        )
        assert r.status_code == 400, r.content
        assert words in r.json()["detail"]


def test_every_engine_option_that_takes_a_path_is_declared_a_data_parameter():
    """An engine option typed as a path must be a reference here, or paths would slip by."""
    import inspect

    for kind in registry.JOB_KINDS.values():
        fn = registry.engine_function(kind)
        for p in inspect.signature(fn).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY and "PathLike" in str(p.annotation):
                declared = p.name in kind.data_parameters
                assert declared or registry.is_platform_parameter(kind, p.name), (kind.name, p.name)


def test_options_the_platform_fills_are_not_offered_nor_accepted(monkeypatch):
    """A platform-filled option (e.g. the detector calibration arrays of a raw stream) is
    neither listed by the kinds endpoint nor accepted from a user."""
    import dataclasses

    from analysis_engine.errors import EngineInputError

    kind = registry.JOB_KINDS["events"]
    hidden = dataclasses.replace(kind, platform_parameters=frozenset({"block_events"}))
    assert "block_events" in registry.allowed_parameters(kind)
    # *_path options are always the platform's (e.g. a raw stream's detector calibration)
    assert not [name for name in registry.allowed_parameters(kind) if name.endswith("_path")]
    with pytest.raises(EngineInputError, match="has no option calibration_path"):
        registry.clean_parameters(kind, {"calibration_path": "/etc/passwd"})
    assert "block_events" not in registry.allowed_parameters(hidden)
    with pytest.raises(EngineInputError, match="has no option block_events"):
        registry.clean_parameters(hidden, {"block_events": 10})


def test_options_that_also_take_values_still_refuse_paths(project, analyst, api_as, factories):
    api = api_as(analyst)
    spectra = _dataset(factories, project, "xcs_spectra", b"spectra")
    kind = registry.JOB_KINDS["compton"]
    assert kind.data_parameters["calibration"].allow_values
    for value, code in (("0.65,2.309", 202), ([0.65, 2.309], 202), ("/etc/calibration.json", 400)):
        r = api.post(
            "/api/v1/jobs/",
            {"kind": "compton", "inputs": [spectra.pk], "parameters": {"calibration": value}},
            format="json",
        )
        assert r.status_code == code, (value, r.content)


def test_kinds_page_says_data_options_take_ids(analyst, client_as):
    page = client_as(analyst).get("/jobs/kinds/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'mask: {"dataset": id} or {"result": id' in text
    assert "never a file path" in text
