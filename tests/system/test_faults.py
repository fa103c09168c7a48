"""Faults on the compose stack, each observed over HTTP only: a Redis restart with queued
jobs, a PostgreSQL restart, a web restart mid-upload. (The worker crash happens in the middle
of the whole-cell pipeline: tests/system/test_jobs.py.)

The harness names the stack in ``CORRELI_SYSTEM_COMPOSE``; the tests use it only to break
things.
"""

from __future__ import annotations

import hashlib

from tests.system.conftest import (
    site_up,
    tus_create,
    tus_offset,
    tus_patch,
    unique,
    wait_for_job,
    wait_until,
)

RECOVERY_S = 180


def _submit(api, kind: str, dataset_id: int, **parameters) -> dict:
    response = api.post(
        "/api/v1/jobs/",
        json={"kind": kind, "inputs": [dataset_id], "parameters": parameters, "force": True},
    )
    assert response.status_code == 202, (response.status_code, response.text)
    return response.json()


def test_redis_restart_loses_no_queued_job(owner_api, twin_cell, compose):
    compose.run("stop", "worker")
    try:
        jobs = [
            _submit(owner_api, "events", twin_cell["datasets"][path])
            for path in ("xcsi/dit_charged_region2.h5", "xcsi/dit_discharged_region2.h5")
        ]
        for job in jobs:
            assert owner_api.get(f"/api/v1/jobs/{job['id']}/").json()["status"] == "queued"
        compose.run("restart", "redis")
        wait_until(lambda: site_up(owner_api), timeout_s=RECOVERY_S, what="site after Redis")
    finally:
        compose.run("start", "worker")
    for job in jobs:
        finished = wait_for_job(owner_api, job["id"], timeout_s=900)
        assert finished["status"] == "succeeded", finished.get("error")


def test_postgres_restart_web_recovers(owner_api, twin_cell, compose):
    compose.run("restart", "db")
    wait_until(lambda: site_up(owner_api), timeout_s=RECOVERY_S, what="site after PostgreSQL")
    sample = owner_api.create(
        "samples", project=twin_cell["project"], name=unique("after db"), material="NMC811"
    )
    assert owner_api.get(f"/api/v1/samples/{sample['id']}/").status_code == 200
    # the worker's connections recover too
    job = _submit(owner_api, "events", twin_cell["datasets"]["xcsi/dit_charged_region3.h5"])
    finished = wait_for_job(owner_api, job["id"], timeout_s=900)
    assert finished["status"] == "succeeded", finished.get("error")


def test_web_restart_mid_upload_resumes(owner_api, twin_cell, twin_dir, compose):
    path = twin_dir / "xct" / "dit_discharged.nxs"
    data = path.read_bytes()
    created = tus_create(
        owner_api,
        len(data),
        filename="restart-" + path.name,
        project=twin_cell["project"],
        dataset_kind="xct_projections",
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    half = len(data) // 2
    assert tus_patch(owner_api, location, 0, data[:half]).status_code == 204
    compose.run("restart", "web")
    wait_until(lambda: site_up(owner_api), timeout_s=RECOVERY_S, what="site after web restart")
    offset = tus_offset(owner_api, location)
    assert offset == half
    response = tus_patch(owner_api, location, offset, data[offset:])
    assert response.status_code == 204, (response.status_code, response.text)
    dataset_id = int(response.headers["CorreLi-Dataset-Id"])
    dataset = owner_api.get(f"/api/v1/datasets/{dataset_id}/").json()
    assert dataset["sha256"] == hashlib.sha256(data).hexdigest()
