"""Deletion that deletes: the files of deleted rows are removed once the deletion commits.

Deleting a project, dataset, result, job or unfinished upload removes its files (datasets,
result files and job folders, partial uploads). The removal runs in ``transaction.on_commit``,
so a deletion that rolls back keeps its files, and it is idempotent: a file already gone
counts as removed. A path that could not be removed (permissions, a busy network share) is
recorded as a :class:`~projects.models.PendingFileRemoval` and retried by the periodic task
``projects.tasks.retry_file_removals``. Each removal writes one audit entry: what was removed
(paths, bytes), by whom (the user who deleted the row), when.

Only paths under the storage roots (``MEDIA_ROOT``, ``CORRELI_UPLOAD_TMP``,
``CORRELI_DATA_ROOT``) are ever removed, and a path a surviving row still references is kept
(a retried job replaces its result row but keeps the file name).

With the object store (``CORRELI_STORAGE=s3``) datasets and results are objects: they are
named ``store:<name>`` (``store:<folder>/`` for everything under a folder) and removed from the
bucket the same way, failures included (PendingFileRemoval keeps the ``store:`` name).

The receivers are connected by ``ProjectsConfig.ready`` through lazy model references, so the
apps whose rows own files need no code of their own for this.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete

from projects import audit, store
from projects.models import AuditEvent, PendingFileRemoval

__all__ = [
    "connect_receivers",
    "schedule_removal",
    "remove_now",
    "retry_pending",
    "find_orphans",
]

logger = logging.getLogger(__name__)


def storage_roots() -> list[Path]:
    roots = [settings.MEDIA_ROOT, settings.CORRELI_UPLOAD_TMP, settings.CORRELI_DATA_ROOT]
    return [Path(root).resolve() for root in roots]


def _inside_roots(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved != root and resolved.is_relative_to(root) for root in storage_roots())


def _size(path: Path) -> int:
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _remove(path: Path) -> None:
    """Remove a file, link or folder; a path already gone is fine (idempotent)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


STORE = "store:"


def _remove_stored(name: str) -> None:
    store.delete(name.rstrip("/"), prefix=name.endswith("/"))


def remove_now(
    paths: Iterable[Path | str],
    *,
    reason: str,
    user=None,
    project_id=None,
    still_referenced: Callable[[Path], bool] | None = None,
) -> dict:
    """Remove ``paths`` now; failures become PendingFileRemoval rows. Returns what happened."""
    removed, failed, kept, freed = [], [], [], 0
    for raw in paths:
        if isinstance(raw, str) and raw.startswith(STORE):
            name = raw[len(STORE) :]
            if still_referenced is not None and still_referenced(Path(name)):
                kept.append(raw)
                continue
            try:
                _remove_stored(name)
            except OSError as exc:
                logger.warning("could not remove %s (%s); will retry", raw, exc)
                PendingFileRemoval.objects.update_or_create(
                    path=raw, defaults={"reason": reason[:200], "last_error": str(exc)}
                )
                failed.append(raw)
                continue
            PendingFileRemoval.objects.filter(path=raw).delete()
            removed.append(raw)
            continue
        path = Path(raw)
        if not path.is_absolute() or not _inside_roots(path):
            logger.warning("not removing %s: outside the storage roots", path)
            continue
        if still_referenced is not None and still_referenced(path):
            kept.append(str(path))
            continue
        if not path.exists() and not path.is_symlink():
            PendingFileRemoval.objects.filter(path=str(path)).delete()
            continue
        size = _size(path)
        try:
            _remove(path)
        except OSError as exc:
            logger.warning("could not remove %s (%s); will retry", path, exc)
            PendingFileRemoval.objects.update_or_create(
                path=str(path), defaults={"reason": reason[:200], "last_error": str(exc)}
            )
            failed.append(str(path))
            continue
        PendingFileRemoval.objects.filter(path=str(path)).delete()
        removed.append(str(path))
        freed += size
    outcome = {"removed": removed, "failed": failed, "kept": kept, "bytes": freed}
    if removed or failed:
        AuditEvent.objects.create(
            project_id=project_id,
            user=user if getattr(user, "is_authenticated", False) else None,
            username=getattr(user, "username", "") or "",
            action=AuditEvent.Action.DELETE,
            object_type="files",
            object_id=str(project_id or ""),
            object_repr=f"{len(removed)} path(s), {freed} bytes: {reason}"[:200],
            changes={"reason": reason, **outcome},
        )
    return outcome


def schedule_removal(
    paths: Iterable[Path | str],
    *,
    reason: str,
    project_id=None,
    still_referenced: Callable[[Path], bool] | None = None,
) -> None:
    """Remove ``paths`` when the current transaction commits (at once outside one)."""
    paths = [p if isinstance(p, str) and p.startswith(STORE) else Path(p) for p in paths if p]
    if not paths:
        return
    user = audit.current_user()

    def run():
        try:
            remove_now(
                paths,
                reason=reason,
                user=user,
                project_id=project_id,
                still_referenced=still_referenced,
            )
        except Exception:  # never turn a committed deletion into an error response
            logger.exception("file removal after %s failed", reason)

    transaction.on_commit(run)


def retry_pending(*, limit: int = 1000) -> dict:
    """Try again to remove the paths earlier removals left behind."""
    pending = list(PendingFileRemoval.objects.all()[:limit])
    if not pending:
        return {"removed": [], "failed": [], "kept": [], "bytes": 0}
    PendingFileRemoval.objects.filter(pk__in=[p.pk for p in pending]).update(
        attempts=F("attempts") + 1
    )
    return remove_now([p.path for p in pending], reason="retry of an earlier removal")


# --- receivers -----------------------------------------------------------------------------


def _media(name: str, *, folder: bool = False) -> Path | str:
    """The local path of stored file (or folder) ``name``, or ``store:name`` for an object."""
    if store.remote():
        return f"{STORE}{name.rstrip('/')}{'/' if folder else ''}"
    return Path(settings.MEDIA_ROOT) / name


def _dataset_deleted(sender, instance, **kwargs):
    if not instance.file:
        return
    name = instance.file.name
    schedule_removal(
        [_media(name)],
        reason=f"dataset {instance.pk} deleted",
        project_id=instance.project_id,
        still_referenced=lambda _: sender.objects.filter(file=name).exists(),
    )


def _result_deleted(sender, instance, **kwargs):
    if not instance.output_file:
        return
    name = instance.output_file.name
    schedule_removal(
        [_media(name)],
        reason=f"result {instance.pk} deleted",
        project_id=instance.project_id,
        # a retried job replaces its Result row but writes the same file name
        still_referenced=lambda _: sender.objects.filter(output_file=name).exists(),
    )


def _job_deleted(sender, instance, **kwargs):
    folder = _media(f"results/{instance.project_id}/{instance.pk}", folder=True)
    schedule_removal([folder], reason=f"job {instance.pk} deleted", project_id=instance.project_id)


def _upload_deleted(sender, instance, **kwargs):
    schedule_removal(
        [instance.partial_path],
        reason=f"upload {instance.pk} deleted",
        project_id=instance.project_id,
    )


def _project_deleted(sender, instance, **kwargs):
    # Rows deleted with the project remove their own files; the folders also catch files
    # that never had a row (a crash between writing and recording).
    schedule_removal(
        [
            _media(f"datasets/{instance.pk}", folder=True),
            _media(f"results/{instance.pk}", folder=True),
        ],
        reason=f"project {instance.pk} ({instance.name}) deleted",
        project_id=instance.pk,
    )


RECEIVERS = {
    "catalogue.Dataset": _dataset_deleted,
    "jobs.Result": _result_deleted,
    "jobs.AnalysisJob": _job_deleted,
    "uploads.Upload": _upload_deleted,
    "projects.Project": _project_deleted,
}


def connect_receivers() -> None:
    for label, receiver in RECEIVERS.items():
        post_delete.connect(
            receiver, sender=apps.get_model(label), dispatch_uid=f"correli-files-{label}"
        )


# --- orphans -------------------------------------------------------------------------------


def find_orphans(*, min_age_s: float = 3600.0) -> list[Path]:
    """Files and folders on disk that no row owns, untouched for ``min_age_s`` seconds.

    Looks at partial uploads (``CORRELI_UPLOAD_TMP/*.part``), dataset files
    (``MEDIA_ROOT/datasets/<project>/``) and job folders (``MEDIA_ROOT/results/<project>/<job>/``).
    The age keeps files that are being written right now (a rename into place, a running job)
    out of the list.
    """
    Dataset = apps.get_model("catalogue.Dataset")
    AnalysisJob = apps.get_model("jobs.AnalysisJob")
    Upload = apps.get_model("uploads.Upload")
    cutoff = time.time() - min_age_s
    orphans: list[Path] = []

    def old(path: Path) -> bool:
        try:
            return path.lstat().st_mtime < cutoff
        except OSError:
            return False

    if store.remote():  # objects: only the partial uploads are local files
        tmp = Path(settings.CORRELI_UPLOAD_TMP)
        live = {str(pk) for pk in Upload.objects.values_list("pk", flat=True)}
        return [p for p in tmp.glob("*.part") if p.stem not in live and old(p)]

    tmp = Path(settings.CORRELI_UPLOAD_TMP)
    if tmp.is_dir():
        live = {str(pk) for pk in Upload.objects.values_list("pk", flat=True)}
        for path in tmp.glob("*.part"):
            if path.stem not in live and old(path):
                orphans.append(path)

    datasets = _media("datasets")
    if datasets.is_dir():
        names = set(Dataset.objects.exclude(file="").values_list("file", flat=True))
        for root, _dirs, files in os.walk(datasets):
            for filename in files:
                path = Path(root) / filename
                if path.relative_to(settings.MEDIA_ROOT).as_posix() not in names and old(path):
                    orphans.append(path)

    results = _media("results")
    if results.is_dir():
        jobs = {(str(p), str(j)) for p, j in AnalysisJob.objects.values_list("project_id", "pk")}
        for project_dir in results.iterdir():
            if not project_dir.is_dir():
                continue
            for job_dir in project_dir.iterdir():
                if (project_dir.name, job_dir.name) not in jobs and old(job_dir):
                    orphans.append(job_dir)
    return orphans
