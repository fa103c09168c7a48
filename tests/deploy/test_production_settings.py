"""Production settings refuse to start without their secrets and pass ``check --deploy``."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k7#x2v!q9-production-like-secret-for-the-deploy-check-0123456789abcdef",
    "ALLOWED_HOSTS": "correli.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/correli_deploy_check",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
    "REDIS_URL": "redis://127.0.0.1:6379/10",
}


def manage(*args, env_overrides=None, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    env.update(PRODUCTION_ENV)
    env.update(env_overrides or {})
    for name in drop:
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


def test_production_refuses_sqlite_and_the_embedded_broker():
    result = manage("check", env_overrides={"DATABASE_URL": "sqlite:///tmp/x.sqlite3"})
    assert result.returncode != 0 and "PostgreSQL" in result.stderr
    result = manage("check", env_overrides={"CELERY_BROKER_URL": "sqla+sqlite:///tmp/b.sqlite3"})
    assert result.returncode != 0 and "redis://" in result.stderr
