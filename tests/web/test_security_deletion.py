"""Issue 18, defect 5: deleting a project, dataset, result or job removes its files, after
the deletion commits, idempotently, with an audit record; failures are retried; orphans on
disk are found by ``purge_uploads``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from jobs.models import AnalysisJob, Result
from projects import files
from projects.models import AuditEvent, PendingFileRemoval
from projects.tasks import retry_file_removals
from uploads.models import Upload

pytestmark = pytest.mark.django_db
MEDIA = Path(settings.MEDIA_ROOT)


def make_result(project, name="compton.h5", content=b"\x89HDF\r\n\x1a\nresult"):
    job = AnalysisJob.objects.create(
        project=project, kind="compton", job_key="k", status="succeeded"
    )
    folder = MEDIA / "results" / str(project.pk) / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    (folder / "part-0000.h5").write_bytes(b"chunk")
    result = Result.objects.create(
        project=project,
        job=job,
        kind="compton",
        output_file=f"results/{project.pk}/{job.pk}/{name}",
        size=len(content),
    )
    return job, result, folder


def make_partial_upload(project, user, data=b"half"):
    upload = Upload.objects.create(
        project=project, created_by=user, filename="big.h5", length=100, offset=len(data)
    )
    upload.partial_path.parent.mkdir(parents=True, exist_ok=True)
    upload.partial_path.write_bytes(data)
    return upload


def file_events():
    return AuditEvent.objects.filter(object_type="files")


def test_deleting_a_dataset_through_the_api_removes_its_file_after_commit(
    api_as, analyst, project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"x" * 1234)
    path = Path(dataset.file.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(analyst).delete(f"/api/v1/datasets/{dataset.pk}/")
    assert response.status_code == 204
    assert not path.exists()
    event = file_events().get()
    assert event.username == "analyst" and event.project_id == project.pk
    assert event.changes["removed"] == [str(path)] and event.changes["bytes"] == 1234
    assert event.created_at is not None


def test_a_rolled_back_deletion_keeps_the_file(
    project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"keep me")
    path = Path(dataset.file.path)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                dataset.delete()
                raise RuntimeError("abort")
    assert callbacks == [] and path.exists()


def test_deleting_a_project_removes_datasets_results_job_folders_uploads_and_strays(
    api_as, owner, project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"d" * 100)
    job, result, folder = make_result(project)
    upload = make_partial_upload(project, owner)
    stray = MEDIA / "datasets" / str(project.pk) / "written-before-a-crash.h5"
    stray.write_bytes(b"no row")
    other_project = factories.make_project(owner, name="kept")
    kept = factories.make_dataset(other_project, content=b"other")
    paths = [Path(dataset.file.path), folder, upload.partial_path, stray]
    assert all(p.exists() for p in paths)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(owner).delete(f"/api/v1/projects/{project.pk}/")
    assert response.status_code == 204
    assert [p for p in paths if p.exists()] == []
    assert not (MEDIA / "results" / str(project.pk)).exists()
    assert not (MEDIA / "datasets" / str(project.pk)).exists()
    assert Path(kept.file.path).exists()
    removed = {path for event in file_events() for path in event.changes["removed"]}
    for path in paths:  # each one named, or inside a folder that was named
        assert any(path == Path(r) or path.is_relative_to(r) for r in removed), path
    assert str(MEDIA / "datasets" / str(project.pk)) in removed
    assert all(event.username == "owner" for event in file_events())


def test_deleting_a_project_from_its_page_removes_its_files(
    client_as, owner, project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"page")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(owner).post(f"/projects/{project.pk}/delete/")
    assert response.status_code == 302
    assert not Path(dataset.file.path).exists()


def test_removal_is_idempotent(project, factories, django_capture_on_commit_callbacks):
    dataset = factories.make_dataset(project, content=b"once")
    path = Path(dataset.file.path)
    with django_capture_on_commit_callbacks(execute=True):
        dataset.delete()
    assert not path.exists()
    outcome = files.remove_now([path], reason="again")
    assert outcome == {"removed": [], "failed": [], "kept": [], "bytes": 0}


def test_a_file_still_referenced_by_a_row_is_kept(project, django_capture_on_commit_callbacks):
    # a retried job deletes its old Result row and records a new one for the same file name
    job, old, folder = make_result(project)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            old.delete()
            Result.objects.create(
                project=project, job=job, kind="compton", output_file=old.output_file.name
            )
    assert (folder / "compton.h5").exists()


def test_deleting_a_result_removes_its_file_and_a_job_its_folder(
    project, django_capture_on_commit_callbacks
):
    job, result, folder = make_result(project)
    with django_capture_on_commit_callbacks(execute=True):
        result.delete()
    assert not (folder / "compton.h5").exists() and (folder / "part-0000.h5").exists()
    with django_capture_on_commit_callbacks(execute=True):
        job.delete()
    assert not folder.exists()


def test_paths_outside_the_storage_roots_are_never_removed(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("x")
    assert files.remove_now([outside], reason="test")["removed"] == []
    assert outside.exists()


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
def test_a_failed_removal_is_recorded_and_retried_by_the_periodic_task(
    project, factories, django_capture_on_commit_callbacks
):
    dataset = factories.make_dataset(project, content=b"stuck")
    path = Path(dataset.file.path)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        # CI runs as root on ext4, where the flag can be set: there a failure is a defect
        reason = "this filesystem or user cannot set the immutable flag"
        if os.environ.get("CI"):
            pytest.fail(f"under CI: {reason}")
        pytest.skip(reason)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            dataset.delete()
        assert path.exists()
        pending = PendingFileRemoval.objects.get()
        assert pending.path == str(path) and "not permitted" in pending.last_error
        assert file_events().get().changes["failed"] == [str(path)]
        assert retry_file_removals() == {"removed": 0, "failed": 1}
        assert PendingFileRemoval.objects.get().attempts == 1
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert retry_file_removals() == {"removed": 1, "failed": 0}
    assert not path.exists() and not PendingFileRemoval.objects.exists()


def test_the_retry_task_is_scheduled():
    entries = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"projects.tasks.retry_file_removals", "uploads.tasks.purge_stale_uploads"} <= entries


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_purge_uploads_finds_and_removes_orphans_on_disk(owner, project, factories, capsys):
    referenced = factories.make_dataset(project, content=b"owned")
    _age(Path(referenced.file.path), 7200)
    orphan_dataset = MEDIA / "datasets" / str(project.pk) / "orphan.h5"
    orphan_dataset.write_bytes(b"o" * 10)
    fresh = MEDIA / "datasets" / str(project.pk) / "being-moved-in.h5"
    fresh.write_bytes(b"new")
    tmp = Path(settings.CORRELI_UPLOAD_TMP)
    tmp.mkdir(parents=True, exist_ok=True)
    orphan_part = tmp / "00000000-0000-0000-0000-000000000000.part"
    orphan_part.write_bytes(b"p" * 5)
    live = make_partial_upload(project, owner)
    orphan_job = MEDIA / "results" / str(project.pk) / "999999"
    orphan_job.mkdir(parents=True)
    (orphan_job / "compton.h5").write_bytes(b"r" * 7)
    for path in (orphan_dataset, orphan_part, orphan_job, live.partial_path):
        _age(path, 7200)

    call_command("purge_uploads", "--dry-run")
    assert "found 3 orphaned path(s)" in capsys.readouterr().out
    assert orphan_dataset.exists()

    call_command("purge_uploads")
    out = capsys.readouterr().out
    assert "removed 3 orphaned path(s), 22 bytes" in out
    assert not orphan_dataset.exists() and not orphan_part.exists() and not orphan_job.exists()
    assert fresh.exists() and live.partial_path.exists() and Path(referenced.file.path).exists()
    assert file_events().get().changes["bytes"] == 22
