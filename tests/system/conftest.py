"""The system suite: CorreLi seen from outside, over HTTP only.

It runs against any CorreLi (``./bin/run`` on this machine, the compose stack, a server) and
needs nothing from inside it. The environment says where and as whom:

``CORRELI_SYSTEM_URL``
    Base URL, e.g. ``http://127.0.0.1:8000``. Unset: the suite is skipped.
``CORRELI_SYSTEM_USER`` / ``CORRELI_SYSTEM_PASSWORD`` (or ``CORRELI_SYSTEM_TOKEN``)
    A user who may create projects (default demo / correli-demo, the ``./bin/run`` login).
``CORRELI_SYSTEM_OTHER_USER`` / ``CORRELI_SYSTEM_OTHER_PASSWORD``
    A second user, member of none of the projects this suite creates (cross-project 404,
    viewer 403). Tests that need it are skipped when it is not given.
``CORRELI_SYSTEM_TWIN_DIR``
    Where the small digital twin is (generated there with ``demo-data`` when missing; default
    a temporary directory).
``CORRELI_SYSTEM_COMPOSE``
    The command that reaches the compose stack (e.g. ``docker-compose -p correli-ci -f
    docker-compose.yml -f docker-compose.offline.yml``): the fault tests use it to kill and
    restart containers, then check through HTTP alone. Unset: those tests are skipped.
``CORRELI_SYSTEM_JOB_TIMEOUT``
    Seconds a pipeline may take (default 1500).

Every response is checked: a 5xx anywhere fails the test that received it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

BASE_URL = os.environ.get("CORRELI_SYSTEM_URL", "").rstrip("/")
JOB_TIMEOUT_S = float(os.environ.get("CORRELI_SYSTEM_JOB_TIMEOUT", "1500"))
REQUEST_TIMEOUT_S = 120


def pytest_collection_modifyitems(config, items):
    if BASE_URL:
        return
    skip = pytest.mark.skip(reason="CORRELI_SYSTEM_URL is not set (the system suite's target)")
    for item in items:
        if "tests/system/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


class Api:
    """A requests session bound to the base URL that remembers every 5xx it received."""

    def __init__(self, token: str | None = None):
        # Headers only: every request opens its own connection (see ``request``).
        self.session = requests.Session()
        self.server_errors: list[str] = []
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{BASE_URL}{path}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        kwargs.setdefault("allow_redirects", False)
        kwargs["headers"] = {**self.session.headers, **kwargs.get("headers", {})}
        # A fresh connection per request: a kept-alive one that the server or proxy closed
        # while the suite waited (for a job, a restart) would fail the next POST or PATCH,
        # which must not be retried blindly.
        with requests.Session() as once:
            response = once.request(method, self.url(path), **kwargs)
        if response.status_code >= 500:
            self.server_errors.append(
                f"{method} {path} -> {response.status_code}: {response.text[:300]}"
            )
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create(self, collection: str, **fields) -> dict:
        response = self.post(f"/api/v1/{collection}/", json=fields)
        assert response.status_code == 201, (collection, response.status_code, response.text)
        return response.json()


_clients: list[Api] = []


def token_for(username: str, password: str) -> str:
    response = requests.post(
        f"{BASE_URL}/api/v1/auth/token/",
        data={"username": username, "password": password},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, (username, response.status_code, response.text)
    return response.json()["token"]


@pytest.fixture(autouse=True)
def _no_server_errors():
    """Fail any test during which the server answered 5xx."""
    for client in _clients:
        client.server_errors.clear()
    yield
    errors = [e for client in _clients for e in client.server_errors]
    assert not errors, "server errors:\n" + "\n".join(errors)


def _client(token: str) -> Api:
    client = Api(token)
    _clients.append(client)
    return client


@pytest.fixture(scope="session")
def owner_api() -> Api:
    token = os.environ.get("CORRELI_SYSTEM_TOKEN") or token_for(
        os.environ.get("CORRELI_SYSTEM_USER", "demo"),
        os.environ.get("CORRELI_SYSTEM_PASSWORD", "correli-demo"),
    )
    return _client(token)


@pytest.fixture(scope="session")
def other_user() -> tuple[str, str]:
    name = os.environ.get("CORRELI_SYSTEM_OTHER_USER")
    password = os.environ.get("CORRELI_SYSTEM_OTHER_PASSWORD")
    if not (name and password):
        reason = "CORRELI_SYSTEM_OTHER_USER / _PASSWORD not set (a second user)"
        if os.environ.get("CI"):  # .ci/stack creates the second user and sets both
            pytest.fail(f"under CI: {reason}")
        pytest.skip(reason)
    return name, password


@pytest.fixture(scope="session")
def other_api(other_user) -> Api:
    return _client(token_for(*other_user))


@pytest.fixture(scope="session")
def anonymous_api() -> Api:
    return _client("")


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def project(owner_api) -> dict:
    return owner_api.create("projects", name=unique("system suite"), description="tests/system")


@pytest.fixture(scope="session")
def twin_dir(tmp_path_factory) -> Path:
    """The small digital twin (files + manifest + ground truth), made on this side."""
    configured = os.environ.get("CORRELI_SYSTEM_TWIN_DIR")
    out = Path(configured) if configured else tmp_path_factory.mktemp("twin-small")
    if not (out / "manifest.yaml").exists() or not (out / "ground_truth.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        from analysis_engine.synthetic.commands import run_demo_data

        run_demo_data(out, size="small", seed=0)
    return out


# --- tus -----------------------------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}


def tus_metadata(**fields) -> str:
    import base64

    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}"
        for key, value in fields.items()
        if value is not None
    )


def tus_create(api: Api, length: int, **metadata) -> requests.Response:
    return api.post(
        "/api/v1/uploads/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": tus_metadata(**metadata)},
    )


def tus_offset(api: Api, location: str) -> int:
    response = api.head(location, headers=TUS)
    assert response.status_code in (200, 204), (response.status_code, response.text)
    return int(response.headers["Upload-Offset"])


def tus_patch(api: Api, location: str, offset: int, chunk: bytes) -> requests.Response:
    return api.patch(
        location,
        data=chunk,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def tus_upload(api: Api, path: Path, *, chunk_bytes: int = 4 * 1024 * 1024, **metadata) -> int:
    """Upload ``path`` in chunks; the id of the Dataset it became."""
    data = path.read_bytes()
    created = tus_create(api, len(data), filename=path.name, **metadata)
    assert created.status_code == 201, (created.status_code, created.text)
    location = created.headers["Location"]
    offset = 0
    response = None
    while offset < len(data):
        response = tus_patch(api, location, offset, data[offset : offset + chunk_bytes])
        assert response.status_code == 204, (response.status_code, response.text)
        offset = int(response.headers["Upload-Offset"])
    return int(response.headers["CorreLi-Dataset-Id"])


# --- jobs ----------------------------------------------------------------------------------

FINISHED = {"succeeded", "failed", "cancelled"}


def wait_for_job(api: Api, job_id: int, *, timeout_s: float = JOB_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    body = {}
    while time.monotonic() < deadline:
        response = api.get(f"/api/v1/jobs/{job_id}/")
        if response.status_code == 200:
            body = response.json()
            if body["status"] in FINISHED:
                return body
        time.sleep(3)
    raise AssertionError(f"job {job_id} not finished after {timeout_s:.0f} s: {body}")


# --- browser session (report pages are session-authenticated Django views) ----------------


class BrowserSession:
    """A logged-in browser session over plain HTTP.

    Cookies are sent by hand: production marks them Secure, and requests (rightly) keeps
    Secure cookies off plain-HTTP URLs, but a stack tested on 127.0.0.1 has no TLS.
    """

    def __init__(self, username: str, password: str):
        self.api = _client("")
        login = self.api.get("/accounts/login/")
        assert login.status_code == 200, login.status_code
        csrf = login.cookies.get("csrftoken")
        field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        response = self.api.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": field},
            headers={"Cookie": f"csrftoken={csrf}", "Referer": self.api.url("/accounts/login/")},
        )
        assert response.status_code == 302, (response.status_code, response.text[:500])
        self.cookie = f"sessionid={response.cookies['sessionid']}"

    def get(self, path: str) -> requests.Response:
        return self.api.get(path, headers={"Cookie": self.cookie})


# --- the compose stack (fault tests only) --------------------------------------------------


class Compose:
    """Runs the harness's compose command; the tests observe the effects over HTTP only."""

    def __init__(self, command: str):
        self.command = shlex.split(command)

    def run(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).strip().splitlines()[0]

    def crash(self, service: str) -> None:
        """SIGKILL the service's main process from the host, as a crash would (the restart
        policy brings it back; ``docker kill`` would count as a deliberate stop)."""
        pid = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", self.container(service)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        os.kill(int(pid), 9)


@pytest.fixture(scope="session")
def compose() -> Compose:
    command = os.environ.get("CORRELI_SYSTEM_COMPOSE")
    if not command:
        pytest.skip("CORRELI_SYSTEM_COMPOSE not set: fault tests need the compose stack")
    return Compose(command)


def wait_until(predicate, *, timeout_s: float, what: str, interval_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s (last: {last!r})")


def site_up(api: Api) -> bool:
    """The site answers an authenticated API call (not just nginx)."""
    try:
        url = api.url("/api/v1/projects/")
        return requests.get(url, headers=dict(api.session.headers), timeout=10).status_code == 200
    except requests.RequestException:
        return False


# --- the small twin's DIT cell, catalogued and uploaded through the API ------------------


@pytest.fixture(scope="session")
def twin_cell(owner_api, project, twin_dir) -> dict:
    """DIT-1 of the small twin: its beamtime, sample, cell and charge states created through
    the API from the twin's manifest, and its files uploaded with tus. Returns the ids."""
    import json

    import yaml

    manifest = yaml.safe_load((twin_dir / "manifest.yaml").read_text())
    truth = json.loads((twin_dir / "ground_truth.json").read_text())
    key, cell_truth = next((k, c) for k, c in truth["cells"].items() if c["name"] == "DIT-1")
    pid = project["id"]
    beamtime = owner_api.create("beamtimes", project=pid, **manifest["beamtime"])
    cell_spec = next(c for c in manifest["cells"] if c["name"] == "DIT-1")
    sample_spec = next(s for s in manifest["samples"] if s["name"] == cell_spec["cathode"])
    sample = owner_api.create("samples", project=pid, **sample_spec)
    cell = owner_api.create("cells", project=pid, **{**cell_spec, "cathode": sample["id"]})
    states = {}
    for spec in manifest["charge_states"]:
        if spec["cell"] == "DIT-1":
            body = {**spec, "cell": cell["id"]}
            states[spec["state"]] = owner_api.create("charge-states", project=pid, **body)["id"]
    datasets = {}
    for entry in manifest["files"]:
        if entry.get("cell") != "DIT-1":
            continue
        dataset_id = tus_upload(
            owner_api,
            twin_dir / entry["path"],
            project=pid,
            dataset_kind=entry["kind"],
            cell=cell["id"],
            charge_state=states.get(entry.get("state")),
            beamtime=beamtime["id"],
            region=entry.get("region"),
        )
        datasets[entry["path"]] = dataset_id
    for path, dataset_id in datasets.items():
        body = owner_api.get(f"/api/v1/datasets/{dataset_id}/").json()
        assert body["status"] == "ready", (path, body)
    return {
        "project": pid,
        "beamtime": beamtime["id"],
        "sample": sample["id"],
        "cell": cell["id"],
        "charge_states": states,
        "datasets": datasets,
        "truth": cell_truth,
        "truth_key": key,
        "pipeline_parameters": truth["pipeline_parameters"],
    }
