"""Jobs through a real WSGI server (``manage.py runserver``, what ``./bin/run`` serves).

DRF's test client never runs the WSGI server's own checks (a header value that is a ``str``
subclass, for one), so these tests start ``runserver`` on a free port against this test
database and talk HTTP to it. The server enqueues for real on the embedded broker (kombu's
SQLAlchemy transport, no result backend, not eager), the configuration a fresh machine gets:
nobody consumes the queue here, so the jobs stay queued, which is all these tests look at.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import _database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, token: str | None = None):
        self.url = url
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None):
        """(status, headers, JSON body or text) of one HTTP request."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, exc.headers, exc.read()
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw.decode(errors="replace")


@pytest.fixture
def jobs_server(tmp_path, settings):
    """``runserver`` on a free port, this test database, an embedded broker of its own."""
    from django.db import connection

    port = _free_port()
    log_path = tmp_path / "runserver.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        "CELERY_RESULT_BACKEND": "",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
    }
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    server = LiveServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(server.url + "/healthz/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"runserver did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
        server.log = lambda: log_path.read_text(errors="replace")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def _dataset(factories, project, kind: str, content: bytes, **links):
    return factories.make_dataset(
        project, content=content, kind=kind, sha256=hashlib.sha256(content).hexdigest(), **links
    )


def test_submit_answers_202_with_a_location_and_the_same_job_200(
    jobs_server, project, analyst, factories
):
    ds = _dataset(factories, project, "xcs_spectra", b"spectra placeholder")
    jobs_server.token = _token(analyst)
    body = {"kind": "compton", "inputs": [ds.pk], "parameters": {"min_counts": 20}}

    status, headers, job = jobs_server.request("POST", "/api/v1/jobs/", body)
    assert status == 202, (job, jobs_server.log()[-3000:])
    assert headers["Location"] == f"{jobs_server.url}/api/v1/jobs/{job['id']}/"
    assert job["status"] == "queued"

    status, headers, again = jobs_server.request("POST", "/api/v1/jobs/", body)
    assert status == 200, again
    assert again["id"] == job["id"]
    assert headers["Location"] == f"{jobs_server.url}/api/v1/jobs/{job['id']}/"


def test_pipeline_on_the_embedded_broker_without_result_backend_answers_202(
    jobs_server, project, analyst, factories
):
    """Events -> compton per region and an XCT chain: chains only, no chord."""
    from jobs.models import AnalysisJob

    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="charged")
    for region in (1, 2):
        _dataset(
            factories, project, "xcs_events", f"events {region}".encode(),
            cell=cell, charge_state=state, region=region,
        )  # fmt: skip
    _dataset(factories, project, "xct_reconstruction", b"xct", cell=cell, charge_state=state)
    jobs_server.token = _token(analyst)

    status, headers, job = jobs_server.request(
        "POST", "/api/v1/jobs/", {"kind": "pipeline", "cell": cell.pk}
    )
    assert status == 202, (job, jobs_server.log()[-3000:])
    assert headers["Location"].endswith(f"/api/v1/jobs/{job['id']}/")
    children = AnalysisJob.objects.filter(parent_id=job["id"])
    assert sorted(children.values_list("kind", flat=True)) == [
        "compton", "compton", "compton", "compton", "correlate", "events", "events", "segment",
        "transport_table",
    ]  # fmt: skip
    # every chained stage got its task id; the joins (correlate, then a compton stage per
    # region inside its cathode footprint) wait for the final step
    joins = [c for c in children if c.kind == "correlate" or c.upstream.filter(kind="correlate")]
    assert len(joins) == 3
    assert all(c.celery_task_id for c in children if c not in joins)

    status, _, again = jobs_server.request(
        "POST", "/api/v1/jobs/", {"kind": "pipeline", "cell": cell.pk}
    )
    assert (status, again["id"]) == (200, job["id"])
    assert "Traceback" not in jobs_server.log()
