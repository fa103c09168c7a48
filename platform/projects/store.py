"""Where the bytes of a dataset or a result live: the one module that knows.

Every stored file (datasets, job results, detector calibration arrays, exports) is a Django
``FieldFile`` on the default storage. ``CORRELI_STORAGE`` picks that storage:

``local`` (default, ``./bin/run``)
    ``FileSystemStorage`` under ``MEDIA_ROOT``. :func:`local_path` is the file itself, a job
    writes its output straight into ``MEDIA_ROOT/results/<project>/<job>/`` and
    :func:`publish` has nothing to do. Nothing changes against a platform without this module.

``s3``
    django-storages' S3 backend (boto3) on an S3-compatible store (MinIO, AWS S3, Ceph RGW;
    moto's server in the tests and the compose stack), configured by ``CORRELI_S3_*``.

    * Inputs are materialised through a size-limited local cache (:class:`InputCache`,
      ``CORRELI_CACHE_DIR``, ``CORRELI_CACHE_MAX_BYTES``) keyed by the object's sha256 (the
      row's checksum; the ETag when a row has none). A download is one streaming GET (resumed
      with a Range request after a dropped connection) written to a temporary name and renamed
      into place, so workers sharing a machine never see half a file; the sha256 is computed
      while the bytes stream in and must match the row's. The least recently used entries are
      evicted by size; an entry a running job holds (:func:`holding`, a shared ``flock``) or
      touched in the last minute is never evicted.
    * Outputs are written under a local scratch folder (``CORRELI_SCRATCH_DIR``) and uploaded
      with a streamed multipart upload (:func:`publish`) before the Result row is written. An
      S3 object only appears when its multipart upload completes, so a failed or interrupted
      upload leaves no half result visible. botocore retries each request (standard mode) and
      :func:`publish` retries the whole transfer a bounded number of times.
    * Finished tus uploads are streamed from the upload area to the store the same way, the
      sha256 computed in the same pass (:func:`store_upload`).
    * Downloads stream from the store in blocks (:func:`download_response`); the views keep
      their permission checks.

Call sites never branch on the backend: they use :func:`local_path`, :func:`holding`,
:func:`output_dir`, :func:`publish`, :func:`fetch`, :func:`download_response` and
:func:`delete` (the uploads app adds :func:`store_upload` to its object-store completion).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse

log = logging.getLogger(__name__)

__all__ = [
    "remote",
    "local_path",
    "output_dir",
    "discard_scratch",
    "publish",
    "fetch",
    "holding",
    "store_upload",
    "exists",
    "delete",
    "download_response",
    "InputCache",
    "StoreError",
]

SHA256 = re.compile(r"^[0-9a-f]{64}$")
BLOCK = 1024 * 1024


class StoreError(OSError):
    """The object store could not be reached or refused a transfer after the retries."""


def remote() -> bool:
    """True when files live in the S3-compatible store (``CORRELI_STORAGE=s3``)."""
    return settings.CORRELI_STORAGE == "s3"


# --- the S3 storage and its client --------------------------------------------------------


def _storage():
    return default_storage


def _bucket_and_client():
    storage = _storage()
    return storage.bucket_name, storage.connection.meta.client


def _key(name: str) -> str:
    from storages.utils import clean_name

    return _storage()._normalize_name(clean_name(name))


def transfer_config():
    from boto3.s3.transfer import TransferConfig

    chunk = int(settings.CORRELI_S3_MULTIPART_CHUNK_BYTES)
    config = TransferConfig(
        multipart_threshold=chunk,
        multipart_chunksize=chunk,
        max_concurrency=int(settings.CORRELI_S3_MAX_CONCURRENCY),
        use_threads=True,
        preferred_transfer_client="classic",
    )
    # a non-seekable stream is buffered part by part: at most this many parts in memory
    config.max_in_memory_upload_chunks = int(settings.CORRELI_S3_MAX_CONCURRENCY) + 1
    return config


def _transient(exc: BaseException) -> bool:
    from http.client import IncompleteRead

    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
        ResponseStreamingError,
    )
    from s3transfer.exceptions import RetriesExceededError
    from urllib3.exceptions import ProtocolError

    if isinstance(
        exc,
        ConnectionError
        | HTTPClientError
        | RetriesExceededError
        | ResponseStreamingError
        | IncompleteReadError
        | ProtocolError
        | IncompleteRead,
    ):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or status in (408, 429)
    return isinstance(exc, ConnectionResetError | TimeoutError)


def _with_retries(what: str, attempt: Callable[[], object]):
    """Run ``attempt``; retry a transient store error ``CORRELI_S3_TRANSFER_ATTEMPTS`` times."""
    attempts = max(int(settings.CORRELI_S3_TRANSFER_ATTEMPTS), 1)
    for n in range(1, attempts + 1):
        try:
            return attempt()
        except Exception as exc:
            if not _transient(exc) or n == attempts:
                raise StoreError(
                    errno.EIO, f"object store: {what} failed after {n} attempt(s): {exc}"
                ) from exc
            delay = min(0.5 * 2 ** (n - 1), 8.0)
            log.warning("object store: %s failed (%s); retry %d in %.1f s", what, exc, n, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _stream_object(client, bucket: str, key: str, target: Path, head: dict, *, what: str) -> str:
    """Write the object into ``target`` with one streaming GET, hashing as the bytes arrive.

    A dropped connection resumes where it stopped (``Range: bytes=N-``, ``If-Match`` the ETag
    seen first, so a replaced object is never spliced); ``CORRELI_S3_TRANSFER_ATTEMPTS``
    failures in a row without progress give up. Returns the sha256 of the whole object.
    """
    attempts = max(int(settings.CORRELI_S3_TRANSFER_ATTEMPTS), 1)
    size, etag = int(head["ContentLength"]), head["ETag"]
    digest = hashlib.sha256()
    written, failures = 0, 0
    with open(target, "wb") as fh:
        while True:
            before = written
            try:
                extra = {"Range": f"bytes={written}-", "IfMatch": etag} if written else {}
                body = client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
                for chunk in body.iter_chunks(BLOCK):
                    fh.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                if written != size:
                    raise ConnectionResetError(f"{written} of {size} bytes arrived")
                return digest.hexdigest()
            except Exception as exc:
                failures = 0 if written > before else failures + 1
                if not _transient(exc) or failures >= attempts:
                    raise StoreError(
                        errno.EIO, f"object store: download of {what} failed: {exc}"
                    ) from exc
                delay = min(0.5 * 2 ** max(failures - 1, 0), 8.0)
                log.warning(
                    "object store: download of %s broke at %d of %d bytes (%s); resuming",
                    what,
                    written,
                    size,
                    exc,
                )
                time.sleep(delay)


class _HashingReader:
    """A forward-only reader that hashes what passes through (no seek: boto3 then streams
    it part by part instead of reading ranges of the file)."""

    def __init__(self, fh):
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


def _upload_file(source: Path, name: str) -> tuple[str, int]:
    """Stream ``source`` to object ``name`` (multipart above one chunk); return sha256, size."""
    bucket, client = _bucket_and_client()
    key = _key(name)
    result: dict[str, _HashingReader] = {}

    def attempt():
        with open(source, "rb") as fh:
            reader = _HashingReader(fh)
            client.upload_fileobj(reader, bucket, key, Config=transfer_config())
            result["reader"] = reader

    _with_retries(f"upload of {name}", attempt)
    reader = result["reader"]
    return reader.sha256.hexdigest(), reader.size


# --- outputs -------------------------------------------------------------------------------


def output_dir(name: str) -> Path:
    """The local folder where files that will be stored as ``name/...`` are written.

    Local storage: the storage folder itself (``MEDIA_ROOT/name``). Object store: the same
    relative folder under the worker's scratch area.
    """
    base = Path(settings.CORRELI_SCRATCH_DIR) if remote() else Path(settings.MEDIA_ROOT)
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def discard_scratch(name: str) -> None:
    """Remove the scratch folder of ``name`` (a job's, once it ended: what a killed attempt
    left there goes too). Nothing to do with local storage, where it is the stored folder."""
    if remote():
        shutil.rmtree(Path(settings.CORRELI_SCRATCH_DIR) / name, ignore_errors=True)


def stored_name(local: Path) -> str:
    """The storage name of a file written under :func:`output_dir`."""
    base = Path(settings.CORRELI_SCRATCH_DIR) if remote() else Path(settings.MEDIA_ROOT)
    return Path(os.path.relpath(local, base)).as_posix()


def publish(local: Path, *, sha256: str = "", keep: bool = True) -> str:
    """Make the file written at ``local`` (under :func:`output_dir`) the stored file of its name.

    Object store: a streamed multipart upload with retries; the object is visible only once
    the upload completed. The scratch file then moves into the input cache (a later job on
    this machine reads it without a download; ``keep=False`` removes it). Local storage: the file already is in place.
    Returns the storage name. Raises :class:`StoreError` when the store stays unreachable.
    """
    name = stored_name(local)
    if not remote():
        return name
    digest, _ = _upload_file(local, name)
    if sha256 and digest != sha256:
        raise StoreError(errno.EIO, f"{name} changed while it was uploaded")
    if keep:
        InputCache.default().adopt(local, digest, suffix=local.suffix)
    else:
        local.unlink(missing_ok=True)
    return name


def store_upload(source: Path, field_file, wanted: str) -> tuple[str, str, int]:
    """Store the finished upload ``source`` under a fresh name like ``wanted``.

    Returns ``(name, sha256, size)``; the sha256 is computed while the bytes stream. Local
    storage: the file is moved (renamed) into ``MEDIA_ROOT`` and hashed in one pass first.
    Object store: streamed with a multipart upload (never read into memory whole); the source
    stays where it is (the caller removes it once the row is saved).
    """
    storage = field_file.storage
    field = field_file.field
    if not remote():
        raise RuntimeError("store_upload is for the object store; local uploads are renamed")
    name = _with_retries(
        f"naming {wanted}",
        lambda: storage.get_available_name(wanted, max_length=field.max_length),
    )
    digest, size = _upload_file(source, name)
    return name, digest, size


def fetch(name: str) -> Path:
    """A local copy of stored file ``name`` that is not a dataset or result (a chunk's part
    file): the file itself locally; from the store, a fresh download under the scratch area."""
    if not remote():
        return Path(settings.MEDIA_ROOT) / name
    target = Path(settings.CORRELI_SCRATCH_DIR) / name
    if not target.exists():
        InputCache.default().download(name, target)
    return target


@contextmanager
def holding(paths) -> Iterator[None]:
    """Keep the cache entries at ``paths`` from eviction while the block runs (a job's inputs)."""
    if not remote():
        yield
        return
    cache = InputCache.default()
    with ExitStack() as stack:
        for path in paths:
            if Path(path).is_relative_to(cache.root) and os.path.exists(path):
                stack.enter_context(cache.hold(Path(path)))
        yield


def local_roots() -> list[Path]:
    """Local folders whose paths may show in an engine message (replaced by object names)."""
    roots = [Path(settings.MEDIA_ROOT)]
    if remote():
        roots += [Path(settings.CORRELI_SCRATCH_DIR), Path(settings.CORRELI_CACHE_DIR)]
    return roots


def exists(name: str) -> bool:
    return bool(name) and _storage().exists(name)


def delete(name: str, *, prefix: bool = False) -> None:
    """Remove stored file ``name`` (or every object under folder ``name`` with ``prefix``).

    Idempotent: a name already gone is fine. Raises OSError when the store cannot be reached.
    """
    if not remote():
        raise RuntimeError("local files are removed by projects.files")
    bucket, client = _bucket_and_client()
    key = _key(name)
    try:
        if not prefix:
            client.delete_object(Bucket=bucket, Key=key)
            return
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    except Exception as exc:
        raise StoreError(errno.EIO, f"object store: could not remove {name}: {exc}") from exc


# --- inputs --------------------------------------------------------------------------------


def _cache_key(field_file) -> str:
    sha = getattr(field_file.instance, "sha256", "") or ""
    if SHA256.match(sha) and field_file.field.name in ("file", "output_file"):
        return sha
    bucket, client = _bucket_and_client()
    head = client.head_object(Bucket=bucket, Key=_key(field_file.name))
    return "etag-" + re.sub(r"[^0-9A-Za-z-]", "", head["ETag"])


def local_path(field_file) -> str:
    """A local path holding the bytes of ``field_file`` (a dataset's or result's file).

    Local storage: the file itself. Object store: the file in the input cache, downloaded on
    first use; a path that does not exist when the store has no such object (callers already
    treat a missing file as "missing from storage").
    """
    if not remote():
        return field_file.path
    return str(InputCache.default().materialise(field_file))


class InputCache:
    """Objects of the store as local files: ``<root>/<key[:2]>/<key><suffix>``, LRU by size."""

    def __init__(self, root: Path, max_bytes: int, *, min_age_s: float = 60.0):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.min_age_s = min_age_s

    @classmethod
    def default(cls) -> InputCache:
        return cls(Path(settings.CORRELI_CACHE_DIR), int(settings.CORRELI_CACHE_MAX_BYTES))

    def path_for(self, key: str, suffix: str = "") -> Path:
        suffix = suffix if re.fullmatch(r"\.[0-9A-Za-z]{1,8}", suffix or "") else ""
        return self.root / key[:2] / f"{key}{suffix}"

    def materialise(self, field_file) -> Path:
        from botocore.exceptions import ClientError

        name = field_file.name
        try:
            key = _cache_key(field_file)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return self.root / "missing" / Path(name).name
            raise
        target = self.path_for(key, Path(name).suffix)
        if target.exists():
            os.utime(target)  # recently used
            return target
        expect = key if SHA256.match(key) else ""
        try:
            self.download(name, target, expect_sha256=expect)
        except FileNotFoundError:
            return self.root / "missing" / Path(name).name
        return target

    def download(self, name: str, target: Path, *, expect_sha256: str = "") -> None:
        """Fetch object ``name`` into ``target``: a temporary name, checked, then renamed."""
        from botocore.exceptions import ClientError

        bucket, client = _bucket_and_client()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            try:
                head = _with_retries(
                    f"reading {name}", lambda: client.head_object(Bucket=bucket, Key=_key(name))
                )
                self.make_room(head["ContentLength"])
                digest = _stream_object(client, bucket, _key(name), tmp, head, what=name)
            except StoreError as exc:
                cause = exc.__cause__
                if isinstance(cause, ClientError) and cause.response.get("Error", {}).get(
                    "Code"
                ) in ("404", "NoSuchKey", "NotFound"):
                    raise FileNotFoundError(errno.ENOENT, f"{name} is not in the store") from exc
                raise
            if expect_sha256 and digest != expect_sha256:
                raise StoreError(
                    errno.EIO, f"{name}: the store's bytes do not match the recorded sha256"
                )
            os.replace(tmp, target)  # atomic: a concurrent reader sees all or nothing
        finally:
            Path(tmp).unlink(missing_ok=True)

    def adopt(self, source: Path, sha256: str, *, suffix: str = "") -> None:
        """Move a file whose bytes are stored (a published result, a finished upload) in."""
        target = self.path_for(sha256, suffix)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.make_room(source.stat().st_size)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                os.replace(source, tmp)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.copyfile(source, tmp)
                source.unlink()
            os.replace(tmp, target)
        except OSError as exc:  # the cache is an optimisation: never fail the caller for it
            log.warning("input cache: could not keep %s (%s)", source, exc)
            source.unlink(missing_ok=True)

    @contextmanager
    def hold(self, path: Path) -> Iterator[None]:
        """A shared lock on a cache entry: :meth:`make_room` skips it while held."""
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def entries(self) -> list[tuple[float, int, Path]]:
        out = []
        if not self.root.is_dir():
            return out
        for path in self.root.glob("*/*"):
            if path.name.startswith("."):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((max(st.st_mtime, st.st_atime), st.st_size, path))
        return out

    def make_room(self, incoming: int) -> int:
        """Evict least recently used entries until ``incoming`` more bytes fit; bytes freed."""
        entries = sorted(self.entries())
        total = sum(size for _, size, _ in entries)
        freed = 0
        now = time.time()
        for used, size, path in entries:
            if total + incoming <= self.max_bytes:
                break
            if now - used < self.min_age_s:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a job holds it: keep
                path.unlink(missing_ok=True)
                total -= size
                freed += size
            except OSError:
                continue
            finally:
                os.close(fd)
        return freed


# --- downloads -----------------------------------------------------------------------------


class _ObjectStream:
    """A store object read block by block (botocore's streaming body), for FileResponse."""

    def __init__(self, body, size: int):
        self._body = body
        self.size = size

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n if n and n > 0 else None)

    def close(self) -> None:
        self._body.close()


def open_stream(stored):
    """A readable stream of the stored bytes of a FieldFile or a storage name (never buffered
    whole)."""
    name = stored if isinstance(stored, str) else stored.name
    if not remote():
        return open(Path(settings.MEDIA_ROOT) / name, "rb")  # noqa: SIM115 - FileResponse closes
    bucket, client = _bucket_and_client()
    try:
        obj = client.get_object(Bucket=bucket, Key=_key(name))
    except Exception as exc:
        raise StoreError(errno.EIO, f"object store: cannot read {name}: {exc}") from exc
    return _ObjectStream(obj["Body"], int(obj["ContentLength"]))


def download_response(stored, *, filename: str | None = None) -> FileResponse:
    """A streamed attachment of a FieldFile or storage name (the caller checked permissions)."""
    name = stored if isinstance(stored, str) else stored.name
    filename = filename or name.rsplit("/", 1)[-1]
    stream = open_stream(stored)
    response = FileResponse(stream, as_attachment=True, filename=filename)
    if isinstance(stream, _ObjectStream):
        response["Content-Length"] = str(stream.size)
    return response
