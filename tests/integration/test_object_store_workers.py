"""Workers that share nothing but the object store (``CORRELI_STORAGE=s3``, moto's S3 server).

Two Celery worker processes, each with its own ``MEDIA_ROOT``, input cache and scratch folder
(as if on two machines), run a whole-cell pipeline whose reconstruction fans out over chunks:
chunks read the scan through their worker's cache, upload their part files, the merge (on
whichever worker) fetches the parts from the store, and the stages after it read the
reconstruction from the store. Nothing is written under any ``MEDIA_ROOT``.
"""

from __future__ import annotations

import re

import h5py
import pytest

from tests.integration.conftest import _check_services
from tests.integration.test_jobs_worker import _worker_starter, scan_dataset

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start_store_worker(settings, tmp_path):
    """Workers on this session's broker (Redis or the embedded default)."""
    _check_services(settings)
    start, stop_all = _worker_starter(settings.CELERY_BROKER_URL, settings, tmp_path)
    yield start
    stop_all()


def _files_under(path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_workers_sharing_only_the_store_run_a_fanned_out_pipeline(
    object_store, moto_s3, start_store_worker, project, analyst, factories, tmp_path, settings
):
    from jobs import dispatch
    from jobs.models import AnalysisJob, Result
    from projects import store

    common = {
        "CORRELI_STORAGE": "s3",
        "CORRELI_S3_ENDPOINT_URL": moto_s3.endpoint,
        "CORRELI_S3_BUCKET": object_store.bucket,
        "CORRELI_S3_ACCESS_KEY_ID": "testing",
        "CORRELI_S3_SECRET_ACCESS_KEY": "testing",
        "CORRELI_S3_MULTIPART_CHUNK_BYTES": str(5 * 1024**2),
    }
    machines = [tmp_path / f"machine-{i}" for i in (1, 2)]
    workers = [
        start_store_worker(
            MEDIA_ROOT=str(m / "media"),
            CORRELI_CACHE_DIR=str(m / "cache"),
            CORRELI_SCRATCH_DIR=str(m / "scratch"),
            **common,
        )
        for m in machines
    ]
    cell = factories.make_cell(project)
    ds = scan_dataset(project, factories, tmp_path, n_slices=16)
    ds.cell = cell
    ds.save()
    assert ds.file.name in object_store.keys("datasets/")
    parent, created = dispatch.submit_pipeline(
        project=project,
        user=analyst,
        cell=cell,
        parameters={"reconstruct": {"center": 47.5, "chunk_slices": 4}},
    )
    assert created
    workers[0].wait_for(
        lambda: AnalysisJob.objects.get(pk=parent.pk).is_finished, timeout=300, interval=0.5
    )
    children = {c.kind: c for c in AnalysisJob.objects.filter(parent=parent)}
    reconstruct = children["reconstruct"]
    assert reconstruct.status == "succeeded", reconstruct.error
    assert all(c.status == "succeeded" for c in children.values()), {
        k: c.error for k, c in children.items()
    }
    result = Result.objects.get(job=reconstruct)
    assert result.summary["chunks"] == 4
    logs = [w.log() for w in workers]
    done = [len(re.findall(r"Task jobs\.run_chunk\[[^\]]+\] succeeded", log)) for log in logs]
    assert sum(done) == 4, done  # (how they spread over the two workers is the broker's call)

    # every stage's output is an object; no part file is left in the bucket or on a machine
    keys = object_store.keys("results/")
    for job in children.values():
        stored = Result.objects.get(job=job)
        if stored.output_file:
            assert keys[stored.output_file.name] == stored.size
    assert not [k for k in keys if "/part-" in k]
    for m in machines:
        assert _files_under(m / "media") == [], m  # no shared filesystem was needed
        assert _files_under(m / "scratch") == [], m  # parts and outputs went to the store

    # the reconstruction, read back here through this process's own cache
    with h5py.File(store.local_path(result.output_file), "r") as f:
        volume = f["entry/reconstruction/data"][()]
    assert volume.shape == (16, 96, 96)
    assert volume[:, 38:58, 38:58].mean() == pytest.approx(0.02, rel=0.1)
