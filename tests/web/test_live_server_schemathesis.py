"""schemathesis against the live OpenAPI schema, through a real WSGI server (runserver).

Bounded (a few examples per operation, a time budget) so that it runs in CI on two cores;
it must find zero server errors and zero responses the schema does not describe (status
code, content type, body, headers). Run by ``./bin/test`` like every other test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from tests.web.live_server_fixtures import wsgi_server  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
EXTRA_ARGS = os.environ.get("CORRELI_SCHEMATHESIS_ARGS", "").split()
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
MAX_EXAMPLES = int(os.environ.get("CORRELI_SCHEMATHESIS_EXAMPLES", "4"))
MAX_TIME_S = int(os.environ.get("CORRELI_SCHEMATHESIS_SECONDS", "150"))


@pytest.fixture
def populated(transactional_db, factories):
    """A member with one of everything, so that generated ids sometimes hit real objects."""
    owner = factories.make_user("fuzz-owner")
    project = factories.make_project(owner, name="Fuzzed")
    cell = factories.make_cell(project)
    factories.make_charge_state(project, cell=cell)
    factories.make_beamtime(project)
    factories.make_dataset(project, content=b"0123456789")
    return Token.objects.create(user=owner).key


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    wsgi_server,  # noqa: F811
    populated,
    tmp_path: Path,
):
    schema_path = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(schema_path))
    assert yaml.safe_load(schema_path.read_text())["paths"]
    report = tmp_path / "report"
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(schema_path),
        "--url",
        wsgi_server.url,
        "--header",
        f"Authorization: Token {populated}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME_S),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "18",
        # one worker: hypothesis' lambda descriptions parse source with ``ast`` and CPython
        # 3.11's parser is not safe across threads
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report),
        *EXTRA_ARGS,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.web.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
    }
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=MAX_TIME_S + 240,
        check=False,
        cwd=tmp_path,  # schemathesis keeps a .schemathesis cache in its working folder
        env=env,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, (
        output[-15000:] + "\n--- server log ---\n" + wsgi_server.log()[-5000:]
    )
