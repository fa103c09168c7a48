"""Jobs and results through the REST API: submit (202), job key, run, fail, cancel, retry,
permissions (viewer 403 on writes, outsiders 404), provenance and figures.

The engine function is a small stand-in registered under the ``compton`` kind, so these tests
exercise the platform end to end (registry -> task -> result -> figure) without depending on
the speed or the state of the real engine stages.
"""

from __future__ import annotations

import hashlib

import pytest
from jobs import engine_registry as registry
from jobs import execution, planning
from jobs.models import AnalysisJob, Comment, JobStatus, Result

import analysis_engine


def submit(client, dataset, **body):
    return client.post(
        "/api/v1/jobs/", {"kind": "compton", "inputs": [dataset.pk], **body}, format="json"
    )


def test_submit_answers_202_and_the_job_runs_to_a_result(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    ds = spectra_dataset(factories, project, li=0.73)
    api = api_as(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(api, ds, parameters={"scale": 1.0})
    assert response.status_code == 202, response.content
    assert response["Location"].endswith(f"/api/v1/jobs/{response.json()['id']}/")

    job = api.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert job["status"] == "succeeded"
    assert job["progress"] == 1.0
    assert job["inputs"] == [ds.pk]
    assert len(job["results"]) == 1

    result = api.get(f"/api/v1/results/{job['results'][0]['id']}/").json()
    assert result["summary"]["li_total"] == pytest.approx(0.73)
    assert result["summary"]["s_total"] == pytest.approx(0.650 + 2.309 * 0.73)
    prov = result["provenance"]
    assert prov["engine_version"] == analysis_engine.__version__
    assert prov["parameters"] == {"scale": 1.0}
    assert prov["inputs"][0]["sha256"] == ds.sha256
    assert prov["timings"]["engine_seconds"] >= 0
    assert prov["job_key"] == job["job_key"]
    stored = Result.objects.get(pk=result["id"])
    assert (
        result["files"]["output"]["sha256"]
        == hashlib.sha256(open(stored.output_file.path, "rb").read()).hexdigest()
    )
    assert result["figure_names"][0] == "li_map"

    fig = api.get(f"/api/v1/results/{result['id']}/figure/").json()
    heat = fig["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["z"][0][0] is None  # NaN outside the mask travels as null
    assert heat["z"][1][2] == pytest.approx(0.73)
    # pixel centres in mm: 0.27 mm HEXITEC pixels at the sample
    assert heat["x"][:2] == pytest.approx([0.135, 0.405])
    assert "mm" in fig["layout"]["xaxis"]["title"]["text"]
    named = api.get(f"/api/v1/results/{result['id']}/figure/?name=s_parameter").json()
    assert named["data"][0]["z"][1][1] == pytest.approx(0.650 + 2.309 * 0.73)
    assert api.get(f"/api/v1/results/{result['id']}/figure/?name=nope").status_code == 404

    download = api.get(f"/api/v1/results/{result['id']}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content)[:8] == b"\x89HDF\r\n\x1a\n"


def test_same_kind_inputs_and_parameters_return_the_existing_job(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    ds = spectra_dataset(factories, project)
    api = api_as(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        first = submit(api, ds, parameters={"scale": 1.0})
    again = submit(api, ds, parameters={"scale": 1.0})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = submit(api, ds, parameters={"scale": 0.5})
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    forced = submit(api, ds, parameters={"scale": 1.0}, force=True)
    assert forced.status_code == 202
    assert forced.json()["id"] not in {first.json()["id"], other.json()["id"]}
    assert forced.json()["job_key"] == first.json()["job_key"]
    assert (
        len(fake_engine.calls) == 1
    )  # only the first one ran (callbacks of the others not executed)
    ids = f"{first.json()['id']},{other.json()['id']}"
    listed = api.get(f"/api/v1/jobs/?ids={ids}").json()["results"]
    assert {j["id"] for j in listed} == {first.json()["id"], other.json()["id"]}
    assert {j["status"] for j in listed} == {"succeeded", "queued"}


def test_job_key_is_canonical():
    a = planning.compute_job_key("compton", ["b" * 64, "a" * 64], {"x": 1, "y": [1, 2]})
    b = planning.compute_job_key("compton", ["a" * 64, "b" * 64], {"y": [1, 2], "x": 1})
    assert a == b and len(a) == 64
    assert a != planning.compute_job_key("compton", ["a" * 64, "b" * 64], {"x": 2, "y": [1, 2]})
    assert a != planning.compute_job_key("events", ["a" * 64, "b" * 64], {"x": 1, "y": [1, 2]})


def test_engine_input_error_fails_the_job_with_the_engine_message(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    ds = spectra_dataset(factories, project)
    api = api_as(analyst)
    msg = "spectra file has no energy_bins: was it written by the events command?"
    with django_capture_on_commit_callbacks(execute=True):
        job_id = submit(api, ds, parameters={"fail": msg}).json()["id"]
    job = api.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "failed"
    assert job["error"] == msg
    assert job["results"] == []


def test_bad_requests_answer_400_with_a_clear_message(
    spectra_dataset, fake_engine, project, analyst, api_as, factories
):
    ds = spectra_dataset(factories, project)
    api = api_as(analyst)
    r = submit(api, ds, parameters={"bin_width": 2})
    assert r.status_code == 400
    assert "no option bin_width" in r.json()["detail"] and "scale" in r.json()["detail"]

    image = factories.make_dataset(project, kind="image", sha256="c" * 64)
    r = submit(api, image)
    assert r.status_code == 400 and "xcs_spectra" in r.json()["detail"]

    rejected = factories.make_dataset(
        project, kind="xcs_spectra", status="rejected", sha256="d" * 64
    )
    r = submit(api, rejected)
    assert r.status_code == 400 and "rejected" in r.json()["detail"]

    r = api.post("/api/v1/jobs/", {"kind": "alchemy", "inputs": [ds.pk]}, format="json")
    assert r.status_code == 400


def test_viewer_reads_and_comments_but_cannot_run_or_cancel(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    viewer,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    ds = spectra_dataset(factories, project)
    with django_capture_on_commit_callbacks(execute=True):
        job_id = submit(api_as(analyst), ds).json()["id"]
    api = api_as(viewer)
    assert submit(api, ds, force=True).status_code == 403
    assert api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 403
    job = api.get(f"/api/v1/jobs/{job_id}/").json()
    result_id = job["results"][0]["id"]
    assert api.get(f"/api/v1/results/{result_id}/figure/").status_code == 200
    r = api.post(
        f"/api/v1/results/{result_id}/comments/", {"text": "Region 3 looks dim"}, format="json"
    )
    assert r.status_code == 201 and r.json()["author"] == "viewer"
    assert Comment.objects.get().project_id == project.pk
    page = api.get(f"/api/v1/results/{result_id}/comments/").json()
    assert page["count"] == 1 and page["next"] is None
    assert [c["text"] for c in page["results"]] == ["Region 3 looks dim"]


def test_outsiders_get_404_everywhere(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    outsider,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    ds = spectra_dataset(factories, project)
    with django_capture_on_commit_callbacks(execute=True):
        job_id = submit(api_as(analyst), ds).json()["id"]
    result_id = Result.objects.get().pk
    api = api_as(outsider)
    for url in (
        f"/api/v1/jobs/{job_id}/",
        f"/api/v1/results/{result_id}/",
        f"/api/v1/results/{result_id}/figure/",
        f"/api/v1/results/{result_id}/download/",
        f"/api/v1/results/{result_id}/comments/",
    ):
        assert api.get(url).status_code == 404, url
    assert api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 404
    assert api.post(f"/api/v1/results/{result_id}/comments/", {"text": "x"}).status_code == 404
    assert api.get("/api/v1/jobs/").json()["count"] == 0
    assert api.get("/api/v1/results/").json()["count"] == 0
    r = submit(api, ds)  # someone else's dataset does not exist for them
    assert r.status_code == 400 and "does not exist" in str(r.json())


def test_cancel_a_queued_job_then_the_worker_skips_it(
    spectra_dataset, fake_engine, project, analyst, api_as, factories
):
    ds = spectra_dataset(factories, project)
    api = api_as(analyst)
    job_id = submit(api, ds).json()["id"]  # on_commit not executed: still queued
    r = api.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert execution.execute_job(job_id) == "cancelled"
    assert fake_engine.calls == [] and not Result.objects.exists()
    # a cancelled job does not block a new submission
    assert submit(api, ds).status_code == 202


def test_cancel_while_running_stops_at_the_next_progress_report(
    spectra_dataset, fake_engine, project, analyst, api_as, factories
):
    ds = spectra_dataset(factories, project)
    job_id = submit(api_as(analyst), ds, parameters={"cancel_mid_run": True}).json()["id"]
    assert execution.execute_job(job_id) == JobStatus.CANCELLED
    job = AnalysisJob.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELLED
    assert not Result.objects.filter(job=job).exists()
    assert not (execution.results_dir(job) / "compton.h5").exists()


def test_a_redelivered_job_runs_again_and_gives_up_after_max_attempts(
    spectra_dataset, fake_engine, project, analyst, api_as, factories
):
    ds = spectra_dataset(factories, project)
    job_id = submit(api_as(analyst), ds).json()["id"]
    # a worker died mid-run: the row says running, attempt 1, and the task is redelivered
    AnalysisJob.objects.filter(pk=job_id).update(status=JobStatus.RUNNING, attempts=1, progress=0.4)
    assert execution.execute_job(job_id, hostname="worker-2") == JobStatus.SUCCEEDED
    job = AnalysisJob.objects.get(pk=job_id)
    assert (job.attempts, job.worker) == (2, "worker-2")
    assert Result.objects.get(job=job).provenance["attempt"] == 2

    job_id = submit(api_as(analyst), ds, force=True).json()["id"]
    AnalysisJob.objects.filter(pk=job_id).update(
        status=JobStatus.RUNNING, attempts=execution.MAX_ATTEMPTS
    )
    assert execution.execute_job(job_id) == JobStatus.FAILED
    assert "lost 3 times" in AnalysisJob.objects.get(pk=job_id).error


def test_job_kinds_endpoint_lists_engine_options(fake_engine, analyst, api_as):
    kinds = {k["kind"]: k for k in api_as(analyst).get("/api/v1/jobs/kinds/").json()}
    assert kinds["compton"]["available"] is True
    assert kinds["compton"]["parameters"]["scale"] == 1.0
    assert kinds["compton"]["inputs"] == [
        {"name": "spectra", "accepts": ["xcs_spectra"], "many": False}
    ]
    assert kinds["correlate"]["inputs"][1]["many"] is True


def _openapi_validator(path: str, method: str = "get", code: str = "200"):
    """A JSON-schema validator for one documented response of the live OpenAPI schema."""
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    def openapi_to_json_schema(node):  # OpenAPI 3.0 "nullable" -> JSON schema null type
        if isinstance(node, dict):
            node = {k: openapi_to_json_schema(v) for k, v in node.items()}
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            return node
        if isinstance(node, list):
            return [openapi_to_json_schema(v) for v in node]
        return node

    components = openapi_to_json_schema(schema["components"])
    response = schema["paths"][path][method]["responses"][code]
    body = openapi_to_json_schema(response["content"]["application/json"]["schema"])
    return jsonschema.Draft7Validator({**body, "components": components})


def test_kinds_and_comments_answer_what_the_schema_says(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    api_as,
    factories,
    django_capture_on_commit_callbacks,
):
    api = api_as(analyst)
    kinds = api.get("/api/v1/jobs/kinds/").json()
    assert isinstance(kinds, list) and len(kinds) == len(registry.JOB_KINDS)
    _openapi_validator("/api/v1/jobs/kinds/").validate(kinds)
    # the options carry --help's words: the compton stand-in's numpydoc-less options at least
    # have their names, types and defaults from the signature
    (compton,) = [k for k in kinds if k["kind"] == "compton"]
    assert [(o["name"], o["type"], o["default"]) for o in compton["options"]] == [
        ("scale", "number", 1.0),
        ("fail", "string", None),
        ("cancel_mid_run", "boolean", False),
        ("mask", "string", None),
    ]
    assert [o["name"] for o in compton["options"]] == list(compton["parameters"])
    # format-suffix routes (if the router has them) answer like the plain ones, never 500
    assert api.get("/api/v1/jobs/kinds.json").status_code in (200, 404)

    ds = spectra_dataset(factories, project)
    with django_capture_on_commit_callbacks(execute=True):
        job = submit(api, ds).json()
    result_id = api.get(f"/api/v1/jobs/{job['id']}/").json()["results"][0]["id"]
    url = f"/api/v1/results/{result_id}/comments/"
    for text in ("first", "second", "third"):
        created = api.post(url, {"text": text}, format="json")
        assert created.status_code == 201
        _openapi_validator("/api/v1/results/{id}/comments/", "post", "201").validate(created.json())
    page = api.get(url + "?page_size=2").json()
    _openapi_validator("/api/v1/results/{id}/comments/").validate(page)
    assert page["count"] == 3 and [c["text"] for c in page["results"]] == ["first", "second"]
    assert [c["text"] for c in api.get(page["next"]).json()["results"]] == ["third"]
    for action in ("comments", "figure", "download"):
        response = api.get(f"/api/v1/results/{result_id}/{action}.json")
        assert response.status_code in (200, 404), (action, response.status_code)
    cancel = api.post(f"/api/v1/jobs/{job['id']}/cancel.json")
    assert cancel.status_code in (200, 404), cancel.status_code


def test_kinds_describe_options_in_the_words_of_the_command_line(analyst, api_as):
    """``GET /jobs/kinds/`` and ``python -m analysis_engine CMD --help`` come from the same
    specs (the engine's signatures and numpydoc), so every name, type, default and help text
    agrees."""
    from analysis_engine.commands import command_for_function

    kinds = {k["kind"]: k for k in api_as(analyst).get("/api/v1/jobs/kinds/").json()}
    assert set(kinds) == set(registry.JOB_KINDS)
    for name, kind in registry.JOB_KINDS.items():
        command = command_for_function(kind.function)
        expected = [
            spec.as_dict()
            for spec in command.parameters
            if not registry.is_platform_parameter(kind, spec.name)
        ]
        assert kinds[name]["options"] == expected, name
        assert all(o["help"] for o in kinds[name]["options"]), name
