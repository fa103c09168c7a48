"""Object storage (``CORRELI_STORAGE=s3``) against a real S3 server: moto's standalone server in
a separate process, reached through a proxy that can cut the connection (tests/s3_store.py).

Upload (tus) → stored object → job (input through the worker's cache, output uploaded) →
Result → download, and the faults: the store lost in the middle of a result upload (retried:
the job succeeds with the whole file) or for good (the job fails, no result row, no object),
the store down when an upload completes (503, the upload completes later) or lost while it
streams there (retried), a download cut midway (resumed), a deletion while the store is down
(recorded, retried).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from catalogue.models import Dataset
from jobs import engine_registry as registry
from jobs import execution
from jobs.models import AnalysisJob, Result
from projects import store
from projects.models import PendingFileRemoval
from projects.tasks import retry_file_removals
from uploads.models import Upload

from tests.web.test_uploads import TUS, create, events_bytes, patch, upload_all

pytestmark = pytest.mark.django_db

PAD_BYTES = 12 * 1024**2  # results above S3's 5 MiB part: a multipart upload of 3 parts


@pytest.fixture
def big_engine(fake_engine, monkeypatch):
    """``fake_engine`` whose output also carries 12 MiB of noise (a multipart upload)."""
    run = fake_engine.kind.function

    def run_big(input_path, output_path, **kwargs):
        summary = run(input_path, output_path, **kwargs)
        with h5py.File(output_path, "a") as f:
            f["padding"] = np.random.default_rng(0).integers(0, 255, PAD_BYTES, dtype=np.uint8)
        return summary

    kind = dataclasses.replace(fake_engine.kind, function=run_big)
    monkeypatch.setitem(registry.JOB_KINDS, "compton", kind)
    fake_engine.kind = kind
    return fake_engine


def _run_job(api, dataset, capture) -> dict:
    with capture(execute=True):
        response = api.post(
            "/api/v1/jobs/", {"kind": "compton", "inputs": [dataset.pk]}, format="json"
        )
    assert response.status_code == 202, response.content
    return api.get(f"/api/v1/jobs/{response.json()['id']}/").json()


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_upload_job_result_and_downloads_go_through_the_store(
    object_store,
    big_engine,
    spectra_dataset,
    client_as,
    api_as,
    analyst,
    project,
    factories,
    settings,
    django_capture_on_commit_callbacks,
):
    # 1. a tus upload of 12 MiB lands in the bucket (multipart), never under MEDIA_ROOT
    content = events_bytes(1_200_000)
    assert len(content) > 2 * settings.CORRELI_S3_MULTIPART_CHUNK_BYTES
    client = client_as(analyst)
    response, location = upload_all(
        client, content, pieces=4, filename="events.h5", project=str(project.pk)
    )
    upload = Upload.objects.get(pk=location.rstrip("/").rsplit("/", 1)[-1])
    dataset = upload.dataset
    assert dataset.status == "ready", dataset.status_message
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert object_store.keys()[dataset.file.name] == len(content)
    assert object_store.read(dataset.file.name) == content
    assert not (Path(settings.MEDIA_ROOT) / dataset.file.name).exists()
    assert not upload.partial_path.exists()  # moved into the input cache, where it was sniffed
    cache = store.InputCache.default()
    assert cache.path_for(dataset.sha256, ".h5").read_bytes() == content

    # 2. the dataset download streams from the store, permission checks unchanged
    api = api_as(analyst)
    download = api.get(f"/api/v1/datasets/{dataset.pk}/download/")
    assert download.status_code == 200
    assert int(download["Content-Length"]) == len(content)
    assert _body(download) == content
    page = client.get(f"/catalogue/datasets/{dataset.pk}/download/")
    assert page.status_code == 200 and _body(page) == content

    # 3. a job: the input comes from the store through the cache, the output is uploaded
    spectra = spectra_dataset(factories, project, li=0.71)
    assert spectra.file.name in object_store.keys()
    cache_entry = cache.path_for(spectra.sha256, ".bin")
    cache_entry.unlink(missing_ok=True)  # (a preview may have cached it): download it again
    job = _run_job(api, spectra, django_capture_on_commit_callbacks)
    assert job["status"] == "succeeded", job["error"]
    assert big_engine.calls[-1]["input"] == str(cache_entry)  # read from the local cache
    result = Result.objects.get(job_id=job["id"])
    key = result.output_file.name
    assert key == f"results/{project.pk}/{job['id']}/compton.h5"
    stored = object_store.read(key)
    assert len(stored) > PAD_BYTES and object_store.keys()[key] == result.size
    assert hashlib.sha256(stored).hexdigest() == result.sha256
    assert not (Path(settings.MEDIA_ROOT) / key).exists()
    scratch = Path(settings.CORRELI_SCRATCH_DIR)
    assert not [p for p in scratch.rglob("*") if p.is_file()]  # scratch emptied
    assert result.summary["li_total"] == pytest.approx(0.71)
    assert "li_map" in result.figures

    # 4. result download and an export, both streamed from the store
    download = api.get(f"/api/v1/results/{result.pk}/download/")
    assert download.status_code == 200 and _body(download) == stored
    formats = execution.result_exports(result)
    assert formats, "the output offers no export"
    exported = api.get(f"/api/v1/results/{result.pk}/export/{formats[0]}/")
    assert exported.status_code == 200
    assert exported["Content-Disposition"].endswith(f'compton.{formats[0]}"')
    assert _body(exported)
    exports = [k for k in object_store.keys(f"results/{project.pk}/") if "/exports/" in k]
    assert exports == [
        f"results/{project.pk}/{job['id']}/exports/compton.{result.sha256[:12]}.{formats[0]}"
    ]

    # 5. outsiders still get 404 for every download
    outsider = factories.make_user("stranger")
    other = api_as(outsider)
    assert other.get(f"/api/v1/datasets/{dataset.pk}/download/").status_code == 404
    assert other.get(f"/api/v1/results/{result.pk}/download/").status_code == 404

    # 6. deleting the job removes its objects from the bucket
    with django_capture_on_commit_callbacks(execute=True):
        AnalysisJob.objects.get(pk=job["id"]).delete()
    assert not object_store.keys(f"results/{project.pk}/{job['id']}/")


def test_store_lost_mid_result_upload_is_retried_and_the_whole_file_lands(
    object_store,
    big_engine,
    spectra_dataset,
    api_as,
    analyst,
    project,
    factories,
    django_capture_on_commit_callbacks,
):
    spectra = spectra_dataset(factories, project, li=0.74)
    object_store.proxy.cut_after(7 * 1024**2, restore_after_s=0.3)  # inside the 2nd part
    job = _run_job(api_as(analyst), spectra, django_capture_on_commit_callbacks)
    assert object_store.proxy.cuts == 1
    assert job["status"] == "succeeded", job["error"]
    result = Result.objects.get(job_id=job["id"])
    stored = object_store.read(result.output_file.name)
    assert len(stored) == result.size
    assert hashlib.sha256(stored).hexdigest() == result.sha256
    with h5py.File(execution.store.local_path(result.output_file)) as f:
        assert f["padding"].shape == (PAD_BYTES,)


def test_store_gone_for_good_fails_the_job_with_no_result_and_no_object(
    object_store,
    big_engine,
    spectra_dataset,
    api_as,
    analyst,
    project,
    factories,
    settings,
    django_capture_on_commit_callbacks,
):
    spectra = spectra_dataset(factories, project, li=0.74)
    store.local_path(spectra.file)  # the input is cached: only the output upload meets the fault
    object_store.proxy.cut_after(7 * 1024**2, restore_after_s=None)  # and never comes back
    started = time.monotonic()
    job = _run_job(api_as(analyst), spectra, django_capture_on_commit_callbacks)
    assert job["status"] == "failed"
    assert "object store: upload of" in job["error"]
    assert "failed after 3 attempt(s)" in job["error"]
    assert time.monotonic() - started < 120  # bounded retries
    assert not Result.objects.filter(job_id=job["id"]).exists()
    object_store.proxy.restore()
    assert not object_store.keys("results/")  # no half-written object is visible
    # the unfinished multipart upload could not even be aborted (the store was gone): its
    # parts are invisible, and the bucket's lifecycle rule (store-init) reclaims them
    key = f"results/{project.pk}/{job['id']}/compton.h5"
    with pytest.raises(object_store.client.exceptions.NoSuchKey):
        object_store.client.get_object(Bucket=object_store.bucket, Key=key)


def test_store_down_when_an_upload_completes_is_503_and_it_completes_later(
    object_store, client_as, analyst, project
):
    content = events_bytes(600_000)
    client = client_as(analyst)
    response, location = create(client, len(content), filename="late.h5", project=str(project.pk))
    assert response.status_code == 201
    half = len(content) // 2
    assert patch(client, location, 0, content[:half]).status_code == 204
    object_store.proxy.cut()
    response = patch(client, location, half, content[half:])
    assert response.status_code == 503, response.content
    upload = Upload.objects.get(pk=location.rstrip("/").rsplit("/", 1)[-1])
    assert upload.status == "receiving" and upload.dataset is None
    assert not Dataset.objects.filter(project=project).exists()
    assert not object_store.keys("datasets/")
    # the client resumes as tus does: HEAD says the last byte is missing, PATCH sends it
    head = client.head(location, headers=TUS)
    offset = int(head["Upload-Offset"])
    assert offset == len(content) - 1
    assert upload.partial_path.stat().st_size == offset  # all but the last byte kept
    object_store.proxy.restore()
    response = patch(client, location, offset, content[offset:])
    assert response.status_code == 204, response.content
    upload.refresh_from_db()
    assert upload.status == "complete"
    assert object_store.read(upload.dataset.file.name) == content
    assert upload.dataset.sha256 == hashlib.sha256(content).hexdigest()


def test_store_lost_while_a_finished_upload_streams_to_it_is_retried(
    object_store, client_as, analyst, project
):
    content = events_bytes(1_200_000)  # 12 MiB: a multipart upload of 3 parts
    client = client_as(analyst)
    response, location = create(client, len(content), filename="big.h5", project=str(project.pk))
    half = len(content) // 2
    assert patch(client, location, 0, content[:half]).status_code == 204
    object_store.proxy.cut_after(7 * 1024**2, restore_after_s=0.3)
    response = patch(client, location, half, content[half:])
    assert response.status_code == 204, response.content
    assert object_store.proxy.cuts == 1
    upload = Upload.objects.get(pk=location.rstrip("/").rsplit("/", 1)[-1])
    assert upload.status == "complete"
    assert upload.dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert object_store.read(upload.dataset.file.name) == content
    assert list(object_store.keys("datasets/")) == [upload.dataset.file.name]


# --- the input cache -----------------------------------------------------------------------


def _fill(cache: store.InputCache, key: str, size: int, age_s: float) -> Path:
    path = cache.path_for(key, ".h5")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_cache_evicts_least_recently_used_by_size_but_never_a_held_entry(tmp_path):
    cache = store.InputCache(tmp_path, max_bytes=1000, min_age_s=60)
    oldest = _fill(cache, "a" * 64, 400, age_s=500)
    held = _fill(cache, "b" * 64, 400, age_s=400)
    newer = _fill(cache, "c" * 64, 100, age_s=300)
    fresh = _fill(cache, "d" * 64, 50, age_s=1)  # used just now: kept whatever its age rank
    with cache.hold(held):
        freed = cache.make_room(600)
    assert freed == 500  # oldest (400) and newer (100): the held one was skipped
    assert not oldest.exists() and not newer.exists()
    assert held.exists() and fresh.exists()
    assert cache.make_room(600) == 400  # released: now it goes
    assert not held.exists()


def _materialise_in_child(pk: int) -> str:
    """Another worker process on the same machine (forked: same settings) asks for it too."""
    from django.db import connections

    connections.close_all()  # never share the parent's database connection
    dataset = Dataset.objects.get(pk=pk)
    path = store.local_path(dataset.file)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() + " " + path


@pytest.mark.django_db(transaction=True)
def test_workers_on_one_machine_share_the_cache_safely(object_store, project, factories, settings):
    content = np.random.default_rng(3).integers(0, 255, 9 * 1024**2, dtype=np.uint8).tobytes()
    dataset = factories.make_dataset(
        project, content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    from django.db import connections

    connections.close_all()
    with multiprocessing.get_context("fork").Pool(4) as pool:
        answers = pool.map(_materialise_in_child, [dataset.pk] * 4)
    digests = {a.split(" ")[0] for a in answers}
    paths = {a.split(" ")[1] for a in answers}
    assert digests == {dataset.sha256} and len(paths) == 1
    cache_dir = Path(settings.CORRELI_CACHE_DIR)
    assert not [p for p in cache_dir.rglob(".*.tmp")]  # every download renamed or removed


def test_a_download_cut_midway_resumes_where_it_stopped(object_store, project, factories, caplog):
    content = np.random.default_rng(4).integers(0, 255, 9 * 1024**2, dtype=np.uint8).tobytes()
    dataset = factories.make_dataset(
        project, content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    object_store.proxy.cut_after(4 * 1024**2, upstream=False, restore_after_s=0.3)
    path = Path(store.local_path(dataset.file))
    assert object_store.proxy.cuts == 1
    assert path.read_bytes() == content  # sha256 checked: the resumed bytes join up exactly
    assert "resuming" in caplog.text


def test_a_download_that_never_gets_through_fails_and_caches_nothing(
    object_store, project, factories
):
    content = b"y" * (3 * 1024**2)
    dataset = factories.make_dataset(
        project, content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    store.InputCache.default().make_room(0)
    object_store.proxy.cut_after(1024**2, upstream=False, restore_after_s=None)
    with pytest.raises(OSError):
        store.local_path(dataset.file)
    assert not store.InputCache.default().entries()
    assert not list(Path(store.InputCache.default().root).rglob("*.tmp"))


def test_a_corrupted_object_is_refused_not_cached(object_store, project, factories):
    content = b"li=0.70"
    dataset = factories.make_dataset(
        project, content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    object_store.client.put_object(
        Bucket=object_store.bucket, Key=dataset.file.name, Body=b"li=0.99"
    )
    with pytest.raises(store.StoreError, match="do not match the recorded sha256"):
        store.local_path(dataset.file)
    assert not store.InputCache.default().entries()


def test_default_is_the_local_filesystem(project, factories, settings):
    assert settings.CORRELI_STORAGE == "local"
    dataset = factories.make_dataset(project, content=b"abc")
    assert store.local_path(dataset.file) == dataset.file.path
    assert Path(dataset.file.path).is_relative_to(settings.MEDIA_ROOT)
    assert store.output_dir("results/1/2") == Path(settings.MEDIA_ROOT) / "results/1/2"


def test_unknown_storage_setting_is_refused(monkeypatch):
    import importlib

    import config.settings.base as base
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("CORRELI_STORAGE", "nfs")
    with pytest.raises(ImproperlyConfigured, match="CORRELI_STORAGE must be local or s3"):
        importlib.reload(base)
    monkeypatch.delenv("CORRELI_STORAGE")
    importlib.reload(base)


def test_deletion_with_the_store_down_is_recorded_and_retried(
    object_store, project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"kept until the store is back")
    name = dataset.file.name
    assert name in object_store.keys()
    object_store.proxy.cut()
    with django_capture_on_commit_callbacks(execute=True):
        dataset.delete()
    pending = PendingFileRemoval.objects.get()
    assert pending.path == f"store:{name}" and "object store" in pending.last_error
    assert retry_file_removals() == {"removed": 0, "failed": 1}
    object_store.proxy.restore()
    assert retry_file_removals() == {"removed": 1, "failed": 0}
    assert name not in object_store.keys() and not PendingFileRemoval.objects.exists()


def test_an_object_missing_from_the_store_reads_as_a_missing_file(object_store, project, factories):
    content = b"li=0.70"
    dataset = factories.make_dataset(
        project, content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    object_store.client.delete_object(Bucket=object_store.bucket, Key=dataset.file.name)
    shutil.rmtree(store.InputCache.default().root, ignore_errors=True)
    assert not os.path.exists(store.local_path(dataset.file))  # "missing from storage" upstream
