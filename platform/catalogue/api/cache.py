"""Server-side cache of dataset list pages, kept fresh by per-project data versions.

A cached page is stored under a key made of the user's id, the scheme and host (the page holds
absolute URLs), the path and the full query string, together with the data versions of the
projects the user belonged to when it was built. A page is served only while the user's
current project set and every one of those versions are unchanged, so

* permissions: a page is never served to another user, and a membership change (a different
  project set) is a miss;
* freshness: every save or delete of a project or catalogue object bumps its project's
  version (``catalogue.signals``), which makes all pages that include that project misses.

Versions live in the default cache and must be shared by all web processes, so the page cache
is on only where that cache is shared (Redis, as in production) unless the setting
``CORRELI_API_LIST_CACHE`` says otherwise: with a per-process cache (LocMem) one worker would
not see another's bump.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

__all__ = ["enabled", "bump_projects", "lookup", "store", "page_key"]

VERSION_KEY = "correli:catalogue:version:{}"
PAGE_KEY = "correli:datasets:page:{}"
PAGE_TIMEOUT_S = 600
_PROCESS_LOCAL = ("LocMemCache", "DummyCache", "FileBasedCache")


def enabled() -> bool:
    setting = getattr(settings, "CORRELI_API_LIST_CACHE", None)
    if setting is not None:
        return bool(setting)
    return not settings.CACHES["default"]["BACKEND"].endswith(_PROCESS_LOCAL)


def _fresh_version() -> int:
    # Random, not 0: a version key that was evicted and re-created must not match old pages.
    return secrets.randbits(62)


def bump_projects(project_ids: Iterable[int | None]) -> None:
    """Invalidate every cached page that includes one of ``project_ids``."""
    for pid in {p for p in project_ids if p is not None}:
        key = VERSION_KEY.format(pid)
        try:
            cache.incr(key)
        except ValueError:  # not in the cache (never read, or evicted)
            cache.set(key, _fresh_version(), None)


def page_key(request) -> str:
    parts = (
        str(request.user.pk),
        request.scheme,
        request.get_host(),
        request.path,
        request.META.get("QUERY_STRING", ""),
    )
    return PAGE_KEY.format(hashlib.sha256("\n".join(parts).encode()).hexdigest())


def lookup(key: str, project_ids: list[int]) -> tuple[tuple, object | None]:
    """``(versions, data)``: the current versions of ``project_ids`` and the cached page data,
    or None when there is no page built from exactly these versions. One cache round trip
    when all versions are known."""
    version_keys = [VERSION_KEY.format(pid) for pid in project_ids]
    found = cache.get_many([*version_keys, key])
    versions = []
    for pid, vkey in zip(project_ids, version_keys, strict=True):
        version = found.get(vkey)
        if version is None:
            cache.add(vkey, _fresh_version(), None)
            version = cache.get(vkey)
        versions.append((pid, version))
    versions = tuple(versions)
    entry = found.get(key)
    if entry is not None and entry[0] == versions:
        return versions, entry[1]
    return versions, None


def store(key: str, versions: tuple, data) -> None:
    """Cache ``data`` as built from ``versions`` (read before the page's queries ran)."""
    cache.set(key, (versions, data), PAGE_TIMEOUT_S)
