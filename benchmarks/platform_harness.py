"""A throwaway CorreLi installation for benchmarks: database, web server, Celery workers.

Used by ``bench_paper_slab.py`` and ``bench_scaling.py``. Everything lives under one folder
(SQLite database, the embedded SQLAlchemy broker, ``MEDIA_ROOT``): the web server is gunicorn
(``config.wsgi``), the workers are ``celery -A config.celery_app worker`` processes with the
prefork pool, each with its own ``CORRELI_SCRATCH_DIR`` and ``TMPDIR``; they share only the
data store (``MEDIA_ROOT``) and the database/broker.

Peak memory: :class:`PeakRss` samples the resident set of every process of a tree (a
gunicorn master and its workers, a Celery worker and its pool children) from
``/proc/PID/status`` (``VmHWM``, the kernel's own high-water mark per process, so nothing
between samples is missed) and can reset the marks between stages (``clear_refs``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

SEED = r"""
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from projects.models import Membership, Project

user = get_user_model().objects.create_user("bench", password="bench-pw-123")
project = Project.objects.create(name="Paper-scale bench")
Membership.objects.create(project=project, user=user, role="analyst")
print(project.pk, Token.objects.create(user=user).key)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def _status(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class PeakRss:
    """Peak resident memory per process of some process trees, sampled in a thread."""

    def __init__(self, roots: dict[str, int], interval_s: float = 0.5) -> None:
        self.roots = roots
        self.interval_s = interval_s
        self.peaks: dict[str, dict[int, int]] = {name: {} for name in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for name, root in self.roots.items():
            for pid in tree(root):
                hwm = _status(pid, "VmHWM")
                if hwm is not None:
                    self.peaks[name][pid] = max(self.peaks[name].get(pid, 0), hwm)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def reset(self) -> None:
        """Forget the peaks so far (and reset the kernel's marks: ``clear_refs`` 5)."""
        self._sample()
        for name, root in self.roots.items():
            for pid in tree(root):
                try:
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
                except OSError:
                    pass
            self.peaks[name] = {}

    def peak(self, name: str) -> tuple[float, float]:
        """(largest single process, sum over the processes' peaks), bytes."""
        self._sample()
        values = list(self.peaks[name].values()) or [0]
        return float(max(values)), float(sum(values))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Installation:
    """A CorreLi under ``var_dir``: migrate, seed, then start the web server and workers."""

    def __init__(self, var_dir: Path) -> None:
        if var_dir.exists():
            shutil.rmtree(var_dir)
        var_dir.mkdir(parents=True)
        self.var_dir = var_dir
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "false",
            "CORRELI_VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
            "CELERY_BROKER_URL": f"sqla+sqlite:///{var_dir / 'broker.sqlite3'}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MEDIA_ROOT": str(var_dir / "media"),
            "CORRELI_UPLOAD_TMP": str(var_dir / "media" / "uploads"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        }
        self.processes: list[subprocess.Popen] = []
        python = sys.executable
        subprocess.run(
            [python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        seeded = subprocess.run(
            [python, "-c", SEED], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        self.project_id, self.token = seeded.stdout.split()[-2:]
        self.url = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def start_web(self, workers: int = 2) -> subprocess.Popen:
        port = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        tmp_dir = ["--worker-tmp-dir", "/dev/shm"] if Path("/dev/shm").is_dir() else []
        process = subprocess.Popen(
            [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", str(workers), "--timeout", "900", "--log-level", "warning", *tmp_dir],
            cwd=ROOT,
            env=self.env,
        )
        self.processes.append(process)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/api/v1/", headers=self.auth, timeout=60)
                return process
            except requests.RequestException:
                if process.poll() is not None:
                    raise SystemExit("gunicorn exited") from None
                time.sleep(0.3)
        raise SystemExit("gunicorn did not answer")

    def start_worker(
        self,
        name: str,
        *,
        concurrency: int = 1,
        extra_env: dict | None = None,
        loglevel: str = "WARNING",
    ) -> subprocess.Popen:
        """A Celery worker (prefork) with its own scratch and temporary directories."""
        scratch = self.var_dir / "scratch" / name
        scratch.mkdir(parents=True, exist_ok=True)
        log = open(self.var_dir / f"worker-{name}.log", "w")  # noqa: SIM115 - lives with the worker
        env = {
            **self.env,
            "CORRELI_SCRATCH_DIR": str(scratch),
            "TMPDIR": str(scratch),
            **(extra_env or {}),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker"]
            + ["--pool", "prefork", "--concurrency", str(concurrency)]
            + ["--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
            + ["--loglevel", loglevel],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes = []

    # -- the REST API ------------------------------------------------------------------------

    def upload(self, path: Path, kind: str, chunk_mb: int = 64) -> int:
        """tus upload with the tuspy client; returns the dataset id once it is ready."""
        from tusclient import client as tus_client

        client = tus_client.TusClient(self.url + "/api/v1/uploads/", headers=self.auth)
        uploader = client.uploader(
            str(path),
            chunk_size=chunk_mb * 1024 * 1024,
            metadata={"filename": path.name, "project": self.project_id, "dataset_kind": kind},
        )
        uploader.upload()
        state = requests.get(uploader.url, headers=self.auth, timeout=60).json()
        if state.get("dataset_status") != "ready":
            raise SystemExit(f"upload of {path.name} not accepted: {state}")
        return int(state["dataset"])

    def submit(self, kind: str, *, inputs=(), input_results=(), parameters=None) -> int:
        body = {
            "kind": kind,
            "inputs": list(inputs),
            "input_results": list(input_results),
            "parameters": parameters or {},
            "force": True,
        }
        response = requests.post(
            self.url + "/api/v1/jobs/", json=body, headers=self.auth, timeout=60
        )
        if response.status_code not in (200, 201, 202):
            raise SystemExit(f"job {kind} refused: {response.status_code} {response.text}")
        return int(response.json()["id"])

    def wait(self, job_id: int, timeout_s: float = 3600) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = requests.get(
                f"{self.url}/api/v1/jobs/{job_id}/", headers=self.auth, timeout=60
            ).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(1.0)
        raise SystemExit(f"job {job_id} did not finish within {timeout_s} s")

    def result(self, result_id: int) -> dict:
        return requests.get(
            f"{self.url}/api/v1/results/{result_id}/", headers=self.auth, timeout=60
        ).json()
