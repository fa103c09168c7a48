"""deploy/check_env.py: the containers' refusal to start with weak or example settings.

The example values are read from deploy/env.example itself, so the check follows the file
users copy."""

import importlib.util
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("check_env", ROOT / "deploy" / "check_env.py")
check_env = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(check_env)


def example() -> dict:
    pairs = {}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def good() -> dict:
    password = secrets.token_urlsafe(18)
    return {
        **example(),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgres://correli:{password}@db:5432/correli",
        "CORRELI_S3_SECRET_ACCESS_KEY": secrets.token_urlsafe(18),
    }


def test_good_settings_pass():
    assert check_env.problems(good()) == []


def test_the_example_file_is_refused_on_every_count():
    found = check_env.problems(example())
    assert "SECRET_KEY is still the example value" in found
    assert "POSTGRES_PASSWORD is empty or still the example value" in found
    assert "the DATABASE_URL password is empty or still the example value" in found
    assert "CORRELI_S3_SECRET_ACCESS_KEY is empty or still the example value" in found


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "short-but-random-3f9a"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "example value"),
        ({"POSTGRES_PASSWORD": ""}, "POSTGRES_PASSWORD is empty"),
        ({"DATABASE_URL": "postgres://correli:change-me@db:5432/correli"}, "DATABASE_URL"),
        ({"CORRELI_S3_SECRET_ACCESS_KEY": "change-me-store-secret"}, "CORRELI_S3_SECRET"),
    ],
)
def test_each_weakness_is_named(change, message):
    found = check_env.problems({**good(), **change})
    assert len(found) == 1 and message in found[0], found


def test_the_script_exits_1_with_one_line():
    env = {k: v for k, v in example().items()}
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "check_env.py")],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("correli: refusing to start: ")
    ok = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "check_env.py")],
        env={**good(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
