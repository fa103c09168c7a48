"""Resource limits of a worker process around one engine call.

:func:`memory_limit` sets a soft ``RLIMIT_AS`` (address space) of the process's current size
plus the allowed bytes while the engine runs, and puts the previous limit back afterwards:
an allocation beyond it fails at once with ``MemoryError`` (numpy, Python) instead of pushing
the host into swap or the kernel's OOM killer, and the job fails with a message saying so.
The limit is per process: it suits Celery's prefork pool (one job per child process), the
default; under a thread pool it would bound the jobs of all threads together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

__all__ = ["memory_limit", "process_size_bytes", "format_bytes"]


def process_size_bytes() -> int | None:
    """Virtual size of this process (``VmSize``), or None where /proc is not available."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def format_bytes(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 / 10 else f"{n / 1024**2:.0f} MiB"


@contextmanager
def memory_limit(limit_bytes: int | None) -> Iterator[int | None]:
    """Within the block, the process may map at most ``limit_bytes`` more (soft RLIMIT_AS).

    Yields the soft limit set (bytes of address space), or None when nothing was set (no
    limit asked, or the platform has none). The hard limit is never lowered, so the previous
    soft limit is always restored.
    """
    if not limit_bytes or limit_bytes <= 0 or resource is None:
        yield None
        return
    size = process_size_bytes()
    if size is None:
        yield None
        return
    old_soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = size + int(limit_bytes)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    if old_soft != resource.RLIM_INFINITY:
        soft = min(soft, old_soft)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        yield soft
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (old_soft, hard))
