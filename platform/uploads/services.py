"""Receiving tus uploads: creation, appending in a stream, completion into a Dataset, termination.

The design keeps three promises:

* Bytes are never held in memory: a PATCH body is received into one reused 8 MiB buffer
  (``recv_into`` on the socket under gunicorn, see ``uploads.body``), hashed there and written
  to the partial file with ``os.write``; nothing is concatenated or copied in Python.
* The recorded ``offset`` is only advanced after the bytes before it are fsynced, and a file
  found longer than the recorded offset (a crash between write and record) is cut back to it,
  so a resume after a server restart continues from a correct offset.
* The sha256 is computed while receiving. hashlib objects cannot be saved, so the running hash
  lives in the receiving process (keyed by upload and offset). When a PATCH lands in another
  process (several gunicorn workers, or a restart), that hash is dropped and the file is hashed
  once, in a streaming pass, when the last byte arrives. The digest is correct either way; the
  common case (one client, one connection) costs no second read.

On completion the partial file is moved (a rename on the same filesystem) to a new, never
existing name under the Dataset storage, the Dataset is created and the format is sniffed with
``analysis_engine.io.sniff``. A file that fails the check is kept with status ``rejected`` and
the engine's message. Nothing stored before is overwritten.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path, PurePosixPath

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, DatasetStatus
from catalogue.services import file_sha256, validate_dataset_file
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from projects import store
from projects.models import Project
from projects.permissions import can_edit, role_in

from analysis_engine.io.sniff import DATASET_KINDS
from uploads.models import Upload, UploadStatus
from uploads.tus import MAX_INT64, TusError, is_ascii_digits

__all__ = [
    "create_upload",
    "append_chunk",
    "complete_upload",
    "check_format",
    "terminate_upload",
    "purge_stale_uploads",
    "check_space",
    "READ_BYTES",
    "CHECKPOINT_BYTES",
]

logger = logging.getLogger(__name__)

# One receive buffer of this size per serving thread, reused; recv_into/readinto fill it.
READ_BYTES = 8 * 1024 * 1024
# Ask the kernel to start writing back every this many bytes received (see _start_writeback).
WRITEBACK_BYTES = 16 * 1024 * 1024
# fsync + record the offset this often during a long PATCH so that progress survives a crash.
CHECKPOINT_BYTES = 256 * 1024 * 1024
_MAX_RUNNING_HASHES = 64

# upload id -> (bytes hashed, hashlib object); process-local, see the module docstring.
_running_hashes: OrderedDict = OrderedDict()
_running_lock = threading.Lock()
_buffers = threading.local()


def _take_running_hash(upload_id, offset: int):
    """The sha256 of the first ``offset`` bytes if this process has it, else None."""
    if offset == 0:
        with _running_lock:
            _running_hashes.pop(upload_id, None)
        return hashlib.sha256()
    with _running_lock:
        entry = _running_hashes.pop(upload_id, None)
    if entry is not None and entry[0] == offset:
        return entry[1]
    return None


def _keep_running_hash(upload_id, offset: int, hasher) -> None:
    with _running_lock:
        _running_hashes[upload_id] = (offset, hasher)
        while len(_running_hashes) > _MAX_RUNNING_HASHES:
            _running_hashes.popitem(last=False)


def _forget_running_hash(upload_id) -> None:
    with _running_lock:
        _running_hashes.pop(upload_id, None)


def _load_sync_file_range():
    """libc ``sync_file_range`` (Linux), or None: Python's os module does not expose it."""
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writeback of the dirty pages in the range, do not wait


def _start_writeback(fd: int, start: int, length: int) -> None:
    """Let the disk start on bytes just written while more arrive (an optimisation only).

    The fdatasync at the end of the PATCH then has little left to wait for; durability still
    rests on that fdatasync alone, never on this call.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, start, length, _SYNC_FILE_RANGE_WRITE)


def _receive_buffer() -> memoryview:
    """This thread's reusable receive buffer (allocated once, not once per PATCH)."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(READ_BYTES))
    return buffer


# --- creation ------------------------------------------------------------------------------


def _int_field(metadata: dict[str, str], key: str) -> int | None:
    value = (metadata.get(key) or "").strip()
    if value == "":
        return None
    if not is_ascii_digits(value) or not 0 < int(value) <= MAX_INT64:
        raise TusError(
            400, f"Upload-Metadata '{key}' must be a positive whole number, not {value!r}"
        )
    return int(value)


def _catalogue_link(model, project: Project, metadata: dict[str, str], key: str):
    pk = _int_field(metadata, key)
    if pk is None:
        return None
    obj = model.objects.filter(project=project, pk=pk).first()
    if obj is None:
        label = model._meta.verbose_name
        raise TusError(400, f"There is no {label} {pk} in project '{project.name}'.")
    return obj


def _clean_filename(metadata: dict[str, str]) -> str:
    # tus-js-client users often send "name" (Uppy's convention); accept it as well.
    raw = metadata.get("filename") or metadata.get("name") or ""
    name = PurePosixPath(raw.replace("\\", "/")).name.strip()
    if not name or name in {".", ".."}:
        raise TusError(400, "Upload-Metadata must carry the file's name as 'filename'.")
    return name[:255]


def check_space(project: Project, length: int) -> None:
    """Refuse (507) an upload of ``length`` bytes that the disk or the project's quota cannot take.

    The disk must keep ``CORRELI_UPLOAD_DISK_MARGIN_BYTES`` free after the upload, on the
    upload area and on the media root alike (the file is moved there when complete). With
    ``CORRELI_PROJECT_QUOTA_BYTES`` set, the project's datasets plus the declared lengths of its
    unfinished uploads plus this one must fit in the quota.
    """
    tmp_dir = Path(settings.CORRELI_UPLOAD_TMP)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    media_root = Path(settings.MEDIA_ROOT)
    media_root.mkdir(parents=True, exist_ok=True)
    margin = int(settings.CORRELI_UPLOAD_DISK_MARGIN_BYTES)
    free = min(shutil.disk_usage(tmp_dir).free, shutil.disk_usage(media_root).free)
    if length > free - margin:
        raise TusError(
            507,
            f"Not enough disk space for {length} bytes: {free} bytes are free and the server "
            f"keeps {margin} in reserve.",
        )
    quota = int(settings.CORRELI_PROJECT_QUOTA_BYTES)
    if quota > 0:
        stored = Dataset.objects.filter(project=project).aggregate(n=Sum("size"))["n"] or 0
        reserved = (
            Upload.objects.filter(project=project, status=UploadStatus.RECEIVING).aggregate(
                n=Sum("length")
            )["n"]
            or 0
        )
        if stored + reserved + length > quota:
            raise TusError(
                507,
                f"Project '{project.name}' would exceed its quota of {quota} bytes: it holds "
                f"{stored} bytes, {reserved} more are being uploaded, and this file is {length}.",
            )


def create_upload(user, *, length: int, metadata: dict[str, str]) -> Upload:
    """Record a new upload and create its empty partial file (tus creation).

    Parameters
    ----------
    user
        The authenticated user; must be an owner or analyst of the project.
    length
        ``Upload-Length`` in bytes.
    metadata
        Decoded ``Upload-Metadata``: ``filename``, ``project`` (id), optional
        ``dataset_kind`` (default ``other``: detect), ``cell``, ``charge_state``,
        ``beamtime``, ``region``.

    Raises
    ------
    TusError
        400 bad metadata, 404 project unknown to the user, 403 viewer, 413 too large,
        507 not enough free disk space.
    """
    filename = _clean_filename(metadata)
    project_id = _int_field(metadata, "project")
    if project_id is None:
        raise TusError(400, "Upload-Metadata must carry 'project' (the project id).")
    if role_in(user, project_id) is None:
        raise TusError(404, "No project matches the given query.")
    project = Project.objects.get(pk=project_id)
    if not can_edit(user, project):
        raise TusError(403, "Your role in this project is read-only (viewer): you cannot upload.")
    kind = (metadata.get("dataset_kind") or "other").strip()
    if kind not in DATASET_KINDS:
        raise TusError(
            400, f"Unknown dataset_kind {kind!r}; expected one of: {', '.join(DATASET_KINDS)}."
        )
    cell = _catalogue_link(Cell, project, metadata, "cell")
    charge_state = _catalogue_link(ChargeState, project, metadata, "charge_state")
    beamtime = _catalogue_link(Beamtime, project, metadata, "beamtime")
    if charge_state is not None and cell is not None and charge_state.cell_id != cell.pk:
        raise TusError(400, f"Charge state {charge_state.pk} belongs to another cell than {cell}.")
    region = _int_field(metadata, "region")
    if region is not None and region > 32767:
        raise TusError(400, f"Region {region} is out of range.")

    limit = int(settings.CORRELI_UPLOAD_MAX_BYTES)
    if length > limit:
        raise TusError(413, f"The file is {length} bytes; this server accepts up to {limit}.")
    check_space(project, length)

    upload = Upload.objects.create(
        project=project,
        created_by=user,
        filename=filename,
        dataset_kind=kind,
        cell=cell,
        charge_state=charge_state,
        beamtime=beamtime,
        region=region,
        metadata=metadata,
        length=length,
    )
    fd = os.open(upload.partial_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    os.close(fd)
    if length == 0:
        _with_lock(upload, lambda fd, locked: complete_upload(locked, hasher=hashlib.sha256()))
        upload.refresh_from_db()
        check_format(upload)
    return upload


# --- appending -----------------------------------------------------------------------------


def _with_lock(upload: Upload, action: Callable):
    """Run ``action(fd, fresh_upload)`` holding an exclusive lock on the partial file."""
    try:
        fd = os.open(upload.partial_path, os.O_RDWR)
    except FileNotFoundError:
        if Upload.objects.filter(pk=upload.pk, status=UploadStatus.COMPLETE).exists():
            raise TusError(409, "This upload is already complete.") from None
        raise TusError(
            410, "The received part of this upload is gone; start a new upload."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TusError(
                423, "Another request is writing to this upload; retry shortly."
            ) from None
        fresh = Upload.objects.get(pk=upload.pk)
        return action(fd, fresh)
    finally:
        os.close(fd)  # also releases the lock


def _sync_and_record(fd: int, upload: Upload, offset: int) -> None:
    # fdatasync: the data and the file size (needed to read it back) are durable before the
    # offset that vouches for them is recorded.
    os.fdatasync(fd)
    Upload.objects.filter(pk=upload.pk).update(offset=offset, updated_at=timezone.now())
    upload.offset = offset


def append_chunk(
    upload: Upload,
    body,
    *,
    offset: int,
    content_length: int,
    progress: Callable[[int], None] | None = None,
) -> Upload:
    """Append a PATCH body to the upload, streaming; complete it when the last byte arrives.

    Parameters
    ----------
    upload
        The upload (already checked to belong to the requesting user).
    body
        The request body: ``body.readinto(view)`` fills a memoryview and returns the byte
        count, ``0`` at its end, ``OSError`` when the client went away
        (``uploads.body.request_body``).
    offset
        The client's ``Upload-Offset``; must equal the server's offset.
    content_length
        Bytes in this body.
    progress
        Optional callable given the server offset after each checkpoint.

    Returns
    -------
    Upload
        The upload with its new offset (and ``dataset`` when complete). A client that went
        away mid-body leaves the bytes it did send recorded.

    Raises
    ------
    TusError
        409 offset mismatch or already complete, 413 past Upload-Length, 423 locked,
        410 partial file gone, 507 disk full.
    """
    if upload.is_complete:
        raise TusError(409, "This upload is already complete.")
    if offset != upload.offset:
        raise TusError(
            409,
            f"Upload-Offset {offset} does not match the {upload.offset} bytes received; "
            "ask with HEAD where to resume.",
        )
    if offset + content_length > upload.length:
        raise TusError(
            413,
            f"This request would go past Upload-Length ({offset} + {content_length} > "
            f"{upload.length} bytes).",
        )

    def receive(fd: int, fresh: Upload) -> Upload:
        if fresh.is_complete:
            raise TusError(409, "This upload is already complete.")
        if offset != fresh.offset:
            raise TusError(
                409, f"Upload-Offset {offset} does not match the {fresh.offset} bytes received."
            )
        on_disk = os.fstat(fd).st_size
        if on_disk < fresh.offset:
            # The bytes after on_disk were recorded but lost (a crash before they reached the
            # disk): step back; the client asks with HEAD and sends them again.
            _forget_running_hash(fresh.pk)
            _sync_and_record(fd, fresh, on_disk)
            raise TusError(409, f"Only {on_disk} bytes were kept; resume from there.")
        if on_disk > fresh.offset:
            os.ftruncate(fd, fresh.offset)  # bytes written but never recorded
        # The running sha256 is updated inline: on a small machine a hashing thread only
        # competes with the receiving one (measured slower on 2 cores); hashlib releases the
        # GIL for large buffers, so other threads of a gthread worker still run meanwhile.
        hasher = _take_running_hash(fresh.pk, fresh.offset)
        buffer = _receive_buffer()
        position = fresh.offset
        end = offset + content_length
        since_checkpoint = 0
        written_back = position
        os.lseek(fd, position, os.SEEK_SET)
        try:
            while position < end:
                try:
                    n = body.readinto(buffer[: min(len(buffer), end - position)])
                except OSError:  # the client went away mid-body (UnreadablePostError)
                    logger.info("upload %s: connection lost at byte %d", fresh.pk, position)
                    break
                if not n:
                    break
                view = buffer[:n]
                if hasher is not None:
                    hasher.update(view)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                position += n
                since_checkpoint += n
                if position - written_back >= WRITEBACK_BYTES:
                    _start_writeback(fd, written_back, position - written_back)
                    written_back = position
                if since_checkpoint >= CHECKPOINT_BYTES:
                    _sync_and_record(fd, fresh, position)
                    since_checkpoint = 0
                    if progress is not None:
                        progress(position)
        except BaseException as exc:
            # A failed write (or a worker being stopped): keep nothing half-known; the bytes
            # after the recorded offset are cut back now or at the next PATCH.
            _forget_running_hash(fresh.pk)
            if not isinstance(exc, OSError):
                raise
            os.ftruncate(fd, fresh.offset)
            if exc.errno == errno.ENOSPC:
                raise TusError(
                    507, "The server's disk is full; the upload can resume later."
                ) from exc
            raise
        _sync_and_record(fd, fresh, position)
        if position == fresh.length:
            return complete_upload(fresh, hasher=hasher)
        if hasher is not None:
            _keep_running_hash(fresh.pk, position, hasher)
        return fresh

    upload = _with_lock(upload, receive)
    # Outside the lock: HDF5 readers take their own lock on the (moved) file.
    check_format(upload)
    return upload


# --- completion ----------------------------------------------------------------------------


def _reserve_storage_name(dataset: Dataset, filename: str) -> tuple[str, Path]:
    """A storage name no file has, reserved by creating it empty (O_EXCL: no race)."""
    field = Dataset._meta.get_field("file")
    storage = field.storage
    wanted = field.generate_filename(dataset, filename)
    while True:
        name = storage.get_available_name(wanted, max_length=field.max_length)
        target = Path(storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))
        except FileExistsError:
            continue
        return name, target


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Upload area and media root on different filesystems: copy, then drop the source.
        shutil.copyfile(source, target)
        source.unlink()


def complete_upload(upload: Upload, *, hasher=None) -> Upload:
    """Move a fully received upload into Dataset storage and record the Dataset (validating).

    Called holding the upload's lock; ``check_format`` then sets ready or rejected.
    ``hasher`` is the running sha256 of the whole file when this process saw every byte;
    otherwise the file is hashed here in one streaming pass.
    """
    partial = upload.partial_path
    size = partial.stat().st_size
    if size != upload.length:
        raise TusError(409, f"Only {size} of {upload.length} bytes are stored; resume the upload.")
    if store.remote():
        return _complete_to_store(upload, partial, size)
    if hasher is not None:
        digest = hasher.hexdigest()
    else:
        digest, _ = file_sha256(partial)
    _forget_running_hash(upload.pk)

    dataset = _new_dataset(upload, size, digest)
    name, target = _reserve_storage_name(dataset, upload.filename)
    _move(partial, target)
    dataset.file.name = name
    try:
        _record_completion(upload, dataset)
    except Exception:
        _move(target, partial)  # put the bytes back: a retried PATCH completes again
        raise
    upload.status, upload.offset, upload.dataset = UploadStatus.COMPLETE, upload.length, dataset
    return upload


def _complete_to_store(upload: Upload, partial: Path, size: int) -> Upload:
    """The object-store flavour of :func:`complete_upload`: stream the assembled file to the
    store (multipart, the sha256 computed in the same pass), then record the Dataset.

    The partial file is kept until the row is saved. A store that stays unreachable answers
    503 with the upload's offset one byte short of its length, so the client's resumption
    (HEAD, PATCH the rest) completes it later; the stored object of a failed save is removed.
    Afterwards the file moves into the input cache, where the format check reads it without
    downloading it back.
    """
    _forget_running_hash(upload.pk)
    dataset = _new_dataset(upload, size, "")
    wanted = Dataset._meta.get_field("file").generate_filename(dataset, upload.filename)
    try:
        name, digest, stored_size = store.store_upload(partial, dataset.file, wanted)
    except OSError as exc:
        logger.warning("upload %s not stored: %s", upload.pk, exc)
        if size > 0:
            # Hand the last byte back to the client: its resumed upload (HEAD, then PATCH from
            # the offset) sends it again, and that PATCH completes the upload once more.
            os.truncate(partial, size - 1)
            Upload.objects.filter(pk=upload.pk).update(offset=size - 1, updated_at=timezone.now())
            upload.offset = size - 1
        raise TusError(
            503, "The object store cannot be reached; the upload can be completed later."
        ) from exc
    if stored_size != size:
        store.delete(name)
        raise TusError(409, "The upload changed while it was stored; resume the upload.")
    dataset.file.name, dataset.sha256 = name, digest
    try:
        _record_completion(upload, dataset)
    except Exception:
        store.delete(name)
        raise
    store.InputCache.default().adopt(partial, digest, suffix=Path(upload.filename).suffix)
    upload.status, upload.offset, upload.dataset = UploadStatus.COMPLETE, upload.length, dataset
    return upload


def _record_completion(upload: Upload, dataset: Dataset) -> None:
    """Save the new Dataset and mark the upload complete, in one transaction."""
    with transaction.atomic():
        dataset.save()
        Upload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.COMPLETE,
            offset=upload.length,
            dataset=dataset,
            updated_at=timezone.now(),
        )


def _new_dataset(upload: Upload, size: int, digest: str) -> Dataset:
    return Dataset(
        project=upload.project,
        kind=upload.dataset_kind,
        name=upload.filename,
        size=size,
        sha256=digest,
        status=DatasetStatus.VALIDATING,
        cell=upload.cell,
        charge_state=upload.charge_state,
        beamtime=upload.beamtime,
        region=upload.region,
        metadata={"upload_id": str(upload.pk), "original_filename": upload.filename},
        created_by=upload.created_by,
    )


def check_format(upload: Upload) -> None:
    """Sniff a just-completed upload's Dataset: ready, or rejected with the engine's message."""
    dataset = upload.dataset
    if dataset is None or dataset.status != DatasetStatus.VALIDATING:
        return
    try:
        validate_dataset_file(dataset, compute_checksum=False)
    except Exception as exc:  # a reader bug must not lose a stored upload
        logger.exception("upload %s: format check failed unexpectedly", upload.pk)
        dataset.status = DatasetStatus.REJECTED
        dataset.status_message = (
            f"The file is stored but its format could not be checked ({type(exc).__name__}: {exc})."
        )
        dataset.save(update_fields=["status", "status_message", "updated_at"])


# --- termination and housekeeping ----------------------------------------------------------


def terminate_upload(upload: Upload) -> None:
    """Delete an upload (tus termination). A finished upload's Dataset is kept."""
    if upload.is_complete:
        upload.delete()
        return

    def drop(fd: int, fresh: Upload) -> None:
        _forget_running_hash(fresh.pk)
        fresh.partial_path.unlink(missing_ok=True)
        fresh.delete()

    try:
        _with_lock(upload, drop)
    except TusError as exc:
        if exc.status != 410:
            raise
        upload.delete()  # the partial file was already gone


def purge_stale_uploads(*, older_than: timedelta) -> int:
    """Delete unfinished uploads untouched for ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    count = 0
    for upload in Upload.objects.filter(status=UploadStatus.RECEIVING, updated_at__lt=cutoff):
        try:
            terminate_upload(upload)
        except TusError:  # being written to right now: not stale after all
            continue
        count += 1
    return count
