"""Slices for the viewer: read one plane through ``analysis_engine.io.slices``, downsample it
with ``analysis_engine.preview`` and keep the bytes in the cache (the file's size and mtime are
in the key, so a rewritten file is never served stale)."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache

from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo import read_flats_darks
from analysis_engine.io.slices import (
    VIEW_VOLUME_PATH,
    check_plane_index,
    iter_volume_slabs,
    read_image_stack_plane,
    read_plane,
    write_view_volume,
)
from analysis_engine.preview import (
    auto_window,
    block_max,
    block_mean,
    block_reduce_3d,
    center_candidates,
    reconstruct_at_centers,
    view_step,
)

from .sources import NXTOMO_LAYERS, Layer, Source

__all__ = [
    "Plane",
    "read_view",
    "cor_preview",
    "parse_window",
    "ensure_view_volume",
    "side_plane_steps",
    "DEFAULT_VIEW_PIXELS",
]

#: Longest side of a downsampled view; the browser asks for full resolution on zoom.
DEFAULT_VIEW_PIXELS = 512
MAX_VIEW_PIXELS = 4096
CACHE_SECONDS = 600


@dataclass(frozen=True)
class Plane:
    """A 2D view: ``data`` (float32 or uint8 for masks), the ``step`` it was downsampled by,
    the full-resolution ``origin`` (row, col) of its first pixel, and the display window."""

    data: np.ndarray
    step: int
    origin: tuple[int, int]
    window: tuple[float, float]

    def headers(self) -> dict[str, str]:
        h, w = self.data.shape
        return {
            "X-Shape": f"{h},{w}",
            "X-Dtype": str(self.data.dtype),
            "X-Step": str(self.step),
            "X-Origin": f"{self.origin[0]},{self.origin[1]}",
            "X-Window": f"{self.window[0]:.6g},{self.window[1]:.6g}",
        }


def _int_param(value: Any, name: str, *, low: int, high: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise EngineInputError(f"{name} must be an integer (got {value!r})") from None
    if number < low or (high is not None and number > high):
        raise EngineInputError(f"{name} must lie in {low}..{high if high is not None else ''}")
    return number


def parse_window(text: str | None) -> tuple[int, int, int, int] | None:
    """``"r0,r1,c0,c1"`` -> a window in full-resolution plane pixels (or None)."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise EngineInputError("window must be four integers: row0,row1,col0,col1")
    r0, r1, c0, c1 = (_int_param(p, "window", low=0) for p in parts)
    if r1 <= r0 or c1 <= c0:
        raise EngineInputError("window must have row1 > row0 and col1 > col0")
    return r0, r1, c0, c1


def _cache_key(path: str, *parts: Any) -> str:
    st = os.stat(path)
    raw = "|".join(str(p) for p in (path, st.st_size, st.st_mtime_ns, *parts))
    return "viewer:" + hashlib.sha256(raw.encode()).hexdigest()


#: a build lock older than this is taken to be left by a dead process
STALE_LOCK_SECONDS = 3600
#: how long a request waits for another process building the same reduced volume
WAIT_FOR_BUILD_SECONDS = 30.0


def _view_volume_path(spec: Layer, step: int) -> Path:
    st = os.stat(spec.path)
    raw = f"{spec.path}|{st.st_size}|{st.st_mtime_ns}|{spec.dataset}|{step}|{spec.mask}"
    folder = Path(settings.MEDIA_ROOT) / "viewer-cache"
    return folder / (hashlib.sha256(raw.encode()).hexdigest()[:32] + ".h5")


def ensure_view_volume(spec: Layer, step: int, *, wait_s: float = WAIT_FOR_BUILD_SECONDS):
    """The reduced copy of ``spec``'s volume (``step``-voxel blocks: mean, or max for masks),
    built once in one pass along z and kept beside the media; None when another process is
    still building it after ``wait_s`` (the caller then reads the plane directly).

    Side planes (y, x) of a volume chunked one slice per chunk touch every chunk of the file;
    a plane of the reduced copy, chunked in small cubes, touches a few hundred small chunks.
    """
    target = _view_volume_path(spec, step)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_suffix(".lock")
    try:
        if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if target.exists():
                return target
            time.sleep(0.2)
        return None
    try:
        how = "max" if spec.mask else "mean"
        reduced = tuple(-(-n // step) for n in spec.shape)
        slabs = (
            (start // step, block_reduce_3d(slab, step=step, how=how))
            for start, slab in iter_volume_slabs(spec.path, spec.dataset, thickness=step)
        )
        write_view_volume(
            target,
            reduced,  # type: ignore[arg-type]
            np.uint8 if spec.mask else np.float32,
            slabs,
            attrs={"step": step, "source": f"{spec.path}:{spec.dataset}"},
        )
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)
    return target


def side_plane_steps(shape: tuple[int, ...], *, max_pixels: int = DEFAULT_VIEW_PIXELS) -> set[int]:
    """The downsampling steps the default views of the y and x planes of ``shape`` use (a
    step of 1 needs no reduced copy)."""
    steps = set()
    for axis in (1, 2):
        plane = tuple(n for i, n in enumerate(shape) if i != axis)
        step = view_step(plane, max_pixels=max_pixels)  # type: ignore[arg-type]
        if step > 1:
            steps.add(step)
    return steps


def _volume_plane(
    spec: Layer, axis: int, index: int, max_pixels: int, window
) -> tuple[np.ndarray, int]:
    """(plane, step): a side plane of a large view from the reduced copy, else read directly
    and block-reduced in 2D."""
    plane_shape = tuple(n for i, n in enumerate(spec.shape) if i != axis)
    step = view_step(plane_shape, max_pixels=max_pixels)  # type: ignore[arg-type]
    if axis != 0 and window is None and step > 1:
        reduced = ensure_view_volume(spec, step)
        if reduced is not None:
            return read_plane(reduced, VIEW_VOLUME_PATH, axis=axis, index=index // step), step
    full = read_plane(spec.path, spec.dataset, axis=axis, index=index, window=window)
    step = view_step(full.shape, max_pixels=max_pixels)
    return (block_max(full, step=step) if spec.mask else block_mean(full, step=step)), step


def _nxtomo_plane(source: Source, layer: str, index: Any) -> np.ndarray:
    info = source.nxtomo
    path = source.nxtomo_path
    if layer == "projection":
        i = _int_param(index, "projection index", low=0, high=info.n_projections - 1)
        k = int(info.projection_indices[i])
        return read_plane(path, source.layers["raw"].dataset, axis=0, index=k)
    if layer in ("flat", "dark"):
        flat, dark = read_flats_darks(path, info=info)
        return flat if layer == "flat" else dark
    row = _int_param(index, "sinogram row", low=0, high=info.n_rows - 1)
    return read_image_stack_plane(
        path, source.layers["raw"].dataset, info.projection_indices, row=row
    )


def read_view(
    source: Source,
    *,
    layer: str,
    axis: Any = 0,
    index: Any = 0,
    max_pixels: Any = DEFAULT_VIEW_PIXELS,
    window: tuple[int, int, int, int] | None = None,
) -> Plane:
    """One plane of ``layer``, downsampled so its longest side is at most ``max_pixels``.

    Raises
    ------
    EngineInputError
        Unknown layer, a non-integer or out-of-range axis/index, a bad window.
    """
    max_pixels = _int_param(max_pixels, "max", low=16, high=MAX_VIEW_PIXELS)
    if source.kind == "nxtomo":
        if layer not in NXTOMO_LAYERS:
            raise EngineInputError(f"layer must be one of {', '.join(NXTOMO_LAYERS)}")
        path, key_parts = source.nxtomo_path, (layer, index, max_pixels, window)
        mask = False
    else:
        if layer not in source.layers:
            raise EngineInputError(
                f"no layer {layer!r}; this volume has {', '.join(source.layers)}"
            )
        spec = source.layers[layer]
        axis, index = check_plane_index(spec.shape, axis, index)
        path, key_parts = spec.path, (spec.dataset, axis, index, max_pixels, window)
        mask = spec.mask
    key = _cache_key(path, *key_parts)
    cached = cache.get(key)
    if cached is not None:
        return cached
    if source.kind == "nxtomo":
        full = _nxtomo_plane(source, layer, index)
        if window is not None:
            r0, r1, c0, c1 = window
            full = full[r0:r1, c0:c1]
            if full.size == 0:
                raise EngineInputError("the window lies outside the image")
        step = view_step(full.shape, max_pixels=max_pixels)
        data = block_mean(full, step=step)
    else:
        data, step = _volume_plane(spec, axis, index, max_pixels, window)
    low, high = (0.0, 1.0) if mask else auto_window(data)
    origin = (window[0], window[2]) if window else (0, 0)
    plane = Plane(np.ascontiguousarray(data), step, origin, (low, high))
    cache.set(key, plane, CACHE_SECONDS)
    return plane


def cor_preview(
    source: Source, *, row: Any, count: Any = 5, spacing_px: Any = 2.0, center: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """One detector row reconstructed at ``count`` candidate centres: (images, centres)."""
    if source.kind != "nxtomo":
        raise EngineInputError("a centre-of-rotation preview needs raw projections (NXtomo)")
    info = source.nxtomo
    row = _int_param(row, "row", low=0, high=info.n_rows - 1)
    count = _int_param(count, "count", low=1, high=9)
    try:
        spacing = float(spacing_px)
        middle = (info.n_cols - 1) / 2.0 if center in (None, "") else float(center)
    except ValueError:
        raise EngineInputError("spacing and center must be numbers (pixels)") from None
    key = _cache_key(source.nxtomo_path, "cor", row, count, spacing, middle)
    cached = cache.get(key)
    if cached is not None:
        return cached
    sino = read_image_stack_plane(
        source.nxtomo_path, source.layers["raw"].dataset, info.projection_indices, row=row
    )
    flat, dark = read_flats_darks(source.nxtomo_path, rows=(row, row + 1), info=info)
    centres = center_candidates(middle, spacing_px=spacing, count=count)
    images = reconstruct_at_centers(sino, flat[0], dark[0], info.angles_deg, centers=centres)
    step = view_step(images.shape[1:], max_pixels=256)
    small = np.stack([block_mean(im, step=step) for im in images])
    out = (small, centres)
    cache.set(key, out, CACHE_SECONDS)
    return out
