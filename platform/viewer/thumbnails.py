"""Small pictures of each cell's latest Li and porosity maps for the project dashboard.

The dashboard lists, per cell, the newest succeeded Compton result per depth region (its Li
stoichiometry map) and the newest segmentation (its lateral porosity map per region), each a
link to its result. The PNG is rendered on request from the result file through
``analysis_engine.io.results`` and cached by (file, size, mtime); a result whose file has gone
missing is listed without a picture instead of breaking the page.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from catalogue.models import Cell
from django.core.cache import cache
from django.urls import reverse
from jobs.models import JobStatus, Result
from projects import store

from analysis_engine.errors import EngineInputError
from analysis_engine.io.png import encode_png
from analysis_engine.io.results import read_result_array
from analysis_engine.preview import colorize

__all__ = ["Thumbnail", "cell_thumbnails", "thumbnail_png", "THUMBNAIL_PX"]

THUMBNAIL_PX = 160
CACHE_SECONDS = 24 * 3600
MAX_PER_KIND = 4


@dataclass(frozen=True)
class Thumbnail:
    label: str
    result: Result
    name: str  # "li" or "porosity-<region index>"
    available: bool

    @property
    def image_url(self) -> str:
        return reverse("viewer:thumbnail", args=[self.result.pk, self.name])

    @property
    def result_url(self) -> str:
        return self.result.get_absolute_url()


def _exists(res: Result) -> bool:
    return bool(res.output_file) and os.path.exists(store.local_path(res.output_file))


def _latest(cell: Cell, kind: str):
    return (
        Result.objects.filter(cell=cell, kind=kind, job__status=JobStatus.SUCCEEDED)
        .select_related("charge_state")
        .order_by("-created_at", "-id")
    )


def cell_thumbnails(project, *, limit_cells: int = 24) -> list[dict]:
    """``[{"cell": Cell, "thumbnails": [Thumbnail]}]`` for the project's cells with maps."""
    out = []
    for cell in Cell.objects.filter(project=project).order_by("name", "pk")[:limit_cells]:
        thumbs: list[Thumbnail] = []
        seen_regions: set = set()
        for res in _latest(cell, "compton")[:50]:
            if res.region in seen_regions or len(seen_regions) >= MAX_PER_KIND:
                continue
            seen_regions.add(res.region)
            words = [res.charge_state.state if res.charge_state_id else ""]
            words.append(f"region {res.region}" if res.region else "map")
            label = "Li, " + " ".join(w for w in words if w)
            thumbs.append(Thumbnail(label, res, "li", _exists(res)))
        thumbs.sort(key=lambda t: t.result.region or 0)
        seg = _latest(cell, "segment").first()
        if seg is not None:
            n = len((seg.summary or {}).get("porosity_by_region") or []) or 1
            for i in range(min(n, MAX_PER_KIND)):
                thumbs.append(
                    Thumbnail(f"porosity, region {i + 1}", seg, f"porosity-{i}", _exists(seg))
                )
        if thumbs:
            out.append({"cell": cell, "thumbnails": thumbs})
    return out


def _map_for(res: Result, name: str):
    path = store.local_path(res.output_file)
    if name == "li" and res.kind == "compton":
        z = read_result_array(path, "li_stoichiometry")
        return z if z is not None and z.ndim == 2 else None
    if name.startswith("porosity-") and res.kind == "segment":
        try:
            i = int(name.split("-", 1)[1])
        except ValueError:
            return None
        stack = read_result_array(path, "lateral_porosity")
        if stack is None or stack.ndim != 3 or not 0 <= i < stack.shape[0]:
            return None
        return stack[i]
    return None


def thumbnail_png(res: Result, name: str) -> bytes:
    """The PNG of map ``name`` of ``res`` (cached).

    Raises
    ------
    EngineInputError
        No file, a missing file, or no such map in it.
    """
    if not _exists(res):
        raise EngineInputError(f"the file of result #{res.pk} is missing from storage")
    path = store.local_path(res.output_file)
    st = os.stat(path)
    raw = f"{path}|{st.st_size}|{st.st_mtime_ns}|{name}|{THUMBNAIL_PX}"
    key = "thumb:" + hashlib.sha256(raw.encode()).hexdigest()
    png = cache.get(key)
    if png is None:
        z = _map_for(res, name)
        if z is None:
            raise EngineInputError(f"result #{res.pk} has no {name} map")
        png = encode_png(colorize(z, size_px=THUMBNAIL_PX))
        cache.set(key, png, CACHE_SECONDS)
    return png
