"""Integration fixtures: a real ``celery -A config.celery_app worker`` process.

The worker shares the test database (PostgreSQL under CI, or the SQLite test file) and the
broker (Redis under CI, or the embedded SQLAlchemy broker) of this pytest process, on a queue
of its own so that parallel runs never take each other's tasks. With ``CI`` or
``CORRELI_REQUIRE_SERVICES`` set, the suite insists on PostgreSQL + Redis and FAILS (never
skips) when either is unreachable.

Usage::

    @pytest.mark.integration
    @pytest.mark.django_db(transaction=True)
    def test_x(celery_worker_process):
        some_task.delay(obj.pk)          # goes to the worker's queue
        celery_worker_process.wait_for(lambda: ..., timeout=60)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90


def _services_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("CORRELI_REQUIRE_SERVICES"))


def _database_url(settings_dict: dict) -> str:
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{settings_dict.get('HOST') or '127.0.0.1'}:{port}/{settings_dict['NAME']}"
    raise AssertionError(f"no worker database URL for engine {engine}")


def _check_services(settings) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    broker = settings.CELERY_BROKER_URL
    if _services_required():
        assert engine.endswith("postgresql"), (
            f"CI needs DATABASE_URL pointing at PostgreSQL, got engine {engine}"
        )
        assert broker.startswith("redis://"), f"CI needs a redis:// CELERY_BROKER_URL, got {broker}"
    if broker.startswith("redis://"):
        import redis

        try:
            redis.Redis.from_url(broker, socket_connect_timeout=5).ping()
        except redis.exceptions.RedisError as exc:
            pytest.fail(f"Redis broker {broker} is unreachable: {exc}")


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path, queue: str):
        self.process = process
        self.log_path = log_path
        self.queue = queue

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, condition, *, timeout: float = 60.0, interval: float = 0.25):
        """Poll ``condition()`` until truthy; fail with the worker's log on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"Celery worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(interval)
        pytest.fail(f"condition not met within {timeout} s; worker log:\n{self.log()[-4000:]}")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start a Celery worker subprocess on this session's test database and broker."""
    from config.celery_app import app
    from django.conf import settings
    from django.db import connection

    _check_services(settings)
    with django_db_blocker.unblock():
        database_url = _database_url(connection.settings_dict)
    queue = f"correli-itest-{uuid.uuid4().hex[:10]}"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config.celery_app",
        "worker",
        "--pool",
        "solo",
        "--queues",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    log_file = open(log_path, "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    worker = WorkerProcess(process, log_path, queue)

    # This process enqueues for real onto the worker's queue.
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        worker.wait_for(lambda: " ready." in worker.log(), timeout=READY_TIMEOUT_S)
        yield worker
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log_file.close()
