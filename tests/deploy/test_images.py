"""The locally built images (deploy/images/build) carry no trace of the host's proxy CA.

The build passes the host CA bundle as a BuildKit secret. These tests open every layer of
every image (``docker save``) and its history and look for the certificates that the host
bundle has beyond the public set (Debian's ca-certificates set and certifi): those are the local additions,
such as a TLS-intercepting proxy's CA. When the host has none, they look for the host bundle
itself (byte for byte). Skipped when no Docker engine or no locally built image is there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGES = [
    "correli-base:bookworm",
    "correli-app:latest",
    "correli-postgres:latest",
    "correli-redis:latest",
    "correli-nginx:latest",
    "correli-store:latest",
]
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.S)


def _docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, timeout=120, **kwargs)


def _docker_ready() -> bool:
    return shutil.which("docker") is not None and _docker("info").returncode == 0


def _bodies(pem: bytes) -> list[bytes]:
    return [b"".join(m.group(1).split()) for m in PEM.finditer(pem)]


def public_pem() -> bytes:
    """The public CAs: Debian's ca-certificates set (what the host bundle is built from,
    before local additions) and certifi's Mozilla bundle."""
    import certifi

    parts = [Path(certifi.where()).read_bytes()]
    parts += [p.read_bytes() for p in sorted(Path("/usr/share/ca-certificates").rglob("*.crt"))]
    return b"\n".join(parts)


def local_additions() -> list[bytes]:
    """Base64 bodies of the certificates in the host bundle that are not public CAs."""
    public = set(_bodies(public_pem()))
    return [body for body in _bodies(HOST_BUNDLE.read_bytes()) if body not in public]


def needles() -> list[bytes]:
    """A line of each local CA as PEM files wrap it (64 columns) from the middle of its body:
    unique to that certificate, unlike the first lines that many certificates share."""
    out = []
    for body in local_additions():
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        out.append(lines[len(lines) // 2])
    return out


def _unavailable(reason: str) -> None:
    """Skip on a development machine; FAIL under CI, whose Docker phases build every image
    before this suite runs (so a missing piece there is a CI defect, not a reason to skip)."""
    if os.environ.get("CI") and os.environ.get("CORRELI_CI_SKIP_DOCKER", "0") != "1":
        pytest.fail(f"CI runs the Docker phases first, yet: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def built_images() -> list[str]:
    if not HOST_BUNDLE.exists():
        _unavailable("no host CA bundle")
    if not _docker_ready():
        _unavailable("no Docker engine reachable")
    present = [image for image in IMAGES if _docker("image", "inspect", image).returncode == 0]
    if not present:
        _unavailable("no locally built CorreLi image (run deploy/images/build)")
    return present


def scan_image(image: str, wanted: list[bytes], bundle_digest: str) -> list[str]:
    """Paths (layer/file) in ``image`` that contain a wanted line or are the host bundle."""
    found = []
    bundle_size = HOST_BUNDLE.stat().st_size
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for member in outer:
                if not member.name.endswith("layer.tar"):
                    continue
                with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as layer:
                    for entry in layer:
                        if not entry.isfile():
                            continue
                        data = layer.extractfile(entry).read()
                        where = f"{member.name}:{entry.name}"
                        if any(n in data for n in wanted):
                            found.append(where)
                        elif (
                            entry.size == bundle_size
                            and hashlib.sha256(data).hexdigest() == bundle_digest
                        ):
                            found.append(where + " (the host bundle)")
    finally:
        save.stdout.close()
        save.wait(timeout=300)
    return found


def test_needles_identify_the_local_additions():
    """The check's own premise: each needle is in the host bundle and in no public cert."""
    if not HOST_BUNDLE.exists():
        _unavailable("no host CA bundle")
    public = public_pem().replace(b"\n", b"")
    host = HOST_BUNDLE.read_bytes()
    for needle in needles():
        assert needle in host
        assert needle not in public


def test_no_layer_and_no_history_entry_holds_the_host_ca(built_images):
    wanted = needles()
    digest = hashlib.sha256(HOST_BUNDLE.read_bytes()).hexdigest()
    for image in built_images:
        assert scan_image(image, wanted, digest) == [], image
        history = _docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        assert history.returncode == 0
        assert b"BEGIN CERTIFICATE" not in history.stdout, image
        assert not any(n in history.stdout for n in wanted), image


def test_scan_finds_a_planted_ca(built_images, tmp_path):
    """The scan can fail: an image that COPYs the host bundle is caught."""
    (tmp_path / "ca.crt").write_bytes(HOST_BUNDLE.read_bytes())
    (tmp_path / "Dockerfile").write_text(
        f"FROM {built_images[0]}\nCOPY ca.crt /usr/local/share/leaked.crt\n"
    )
    tag = "correli-test-planted-ca:latest"
    build = _docker("build", "-q", "-t", tag, str(tmp_path))
    assert build.returncode == 0, build.stderr
    try:
        digest = hashlib.sha256(HOST_BUNDLE.read_bytes()).hexdigest()
        found = scan_image(tag, needles(), digest)
        assert any("usr/local/share/leaked.crt" in path for path in found), found
    finally:
        _docker("rmi", "-f", tag)


def _compose(project: str, *args: str, env_file: str) -> subprocess.CompletedProcess:
    import os

    root = Path(__file__).resolve().parents[2]
    command = ["docker-compose", "-p", project, "-f", "docker-compose.yml"]
    command += ["-f", "docker-compose.offline.yml", *args]
    env = {**os.environ, "CORRELI_ENV_FILE": env_file, "CORRELI_HTTP_PORT": "18499"}
    return subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.parametrize(
    ("service", "line"),
    [
        ("web", "correli: refusing to start: SECRET_KEY is still the example value"),
        ("worker", "correli: refusing to start: SECRET_KEY is still the example value"),
        ("db", "correli-postgres: refusing to start: POSTGRES_PASSWORD is empty or still"),
    ],
)
def test_compose_refuses_the_example_settings(built_images, service, line):
    """The stack started with deploy/env.example as it is: each service exits 1 and logs
    one line naming the problem."""
    if shutil.which("docker-compose") is None:
        _unavailable("docker-compose missing")
    needed = {"web": "correli-app:latest", "worker": "correli-app:latest"}
    if needed.get(service, "correli-postgres:latest") not in built_images:
        _unavailable("image not built")
    project = f"correli-refuse-{service}"
    try:
        done = _compose(
            project, "run", "--rm", "--no-deps", "-T", service, env_file="deploy/env.example"
        )
        assert done.returncode == 1, (done.returncode, done.stdout[-500:], done.stderr[-500:])
        assert line in done.stdout + done.stderr
    finally:
        _compose(project, "down", "-v", "--remove-orphans", env_file="deploy/env.example")
