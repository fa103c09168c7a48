"""What the viewer shows for a result or a dataset: which file, which HDF5 volumes, masks,
depth regions and voxel size. ORM lookups only; the pixels are read by ``services``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from catalogue.models import Dataset
from jobs.models import Result
from projects import store

from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo import DATA_PATH, RECONSTRUCTION_PATH, read_nxtomo_info
from analysis_engine.io.slices import dataset_paths, volume_info

__all__ = ["Layer", "Source", "source_for_result", "source_for_dataset", "NXTOMO_LAYERS"]

NXTOMO_LAYERS = ("projection", "flat", "dark", "sinogram")


@dataclass(frozen=True)
class Layer:
    """One volume the viewer can slice: ``path``:``dataset``, shape, and whether it is a mask."""

    name: str
    path: str
    dataset: str
    shape: tuple[int, ...]
    mask: bool = False


@dataclass
class Source:
    """Everything the viewer page needs to know about one object."""

    title: str
    kind: str  # "volume" or "nxtomo"
    layers: dict[str, Layer] = field(default_factory=dict)
    voxel_size_um: float | None = None
    region_axis: int | None = None
    region_bounds: list[int] | None = None
    nxtomo_path: str | None = None
    nxtomo: Any = None

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": self.title,
            "kind": self.kind,
            "voxel_size_um": self.voxel_size_um,
            "layers": {
                name: {"shape": list(layer.shape), "mask": layer.mask}
                for name, layer in self.layers.items()
            },
            "regions": (
                {"axis": self.region_axis, "bounds": self.region_bounds}
                if self.region_bounds
                else None
            ),
        }
        if self.nxtomo is not None:
            info = self.nxtomo
            out["nxtomo"] = {
                "projections": info.n_projections,
                "flats": int(info.flat_indices.size),
                "darks": int(info.dark_indices.size),
                "rows": info.n_rows,
                "cols": info.n_cols,
                "angles_deg": [float(info.angles_deg[0]), float(info.angles_deg[-1])],
            }
        return out


def _file(obj) -> str:
    field_file = obj.output_file if isinstance(obj, Result) else obj.file
    if not field_file:
        raise EngineInputError(f"{obj} has no file to show")
    path = store.local_path(field_file)
    if not os.path.exists(path):
        raise EngineInputError(f"the file of {obj} is missing from storage")
    return path


def _finite(v: Any) -> float | None:
    try:
        value = float(v)
    except (TypeError, ValueError):
        return None
    return value if value == value and value > 0 else None  # NaN or <= 0 -> None


def _volume_layer(name: str, path: str, dataset: str, *, mask: bool = False) -> Layer:
    info = volume_info(path, dataset)
    return Layer(name, path, dataset, info.shape, mask)


def _grey_for_segmentation(result: Result) -> tuple[str, str] | None:
    """The reconstruction the segmentation was computed from (a result or a dataset)."""
    for upstream in result.job.input_results.order_by("-id"):
        if upstream.kind == "reconstruct" and upstream.output_file:
            return store.local_path(upstream.output_file), RECONSTRUCTION_PATH
    for ds in result.job.inputs.order_by("-id"):
        if ds.kind == "xct_reconstruction" and ds.file:
            return store.local_path(ds.file), RECONSTRUCTION_PATH
    return None


def source_for_result(result: Result) -> Source:
    """The viewer source of a reconstruction or segmentation result.

    Raises
    ------
    EngineInputError
        A result kind without a volume, or an unreadable file.
    """
    path = _file(result)
    if result.kind == "reconstruct":
        layer = _volume_layer("grey", path, RECONSTRUCTION_PATH)
        attrs = volume_info(path, RECONSTRUCTION_PATH).attrs
        return Source(
            title=str(result),
            kind="volume",
            layers={"grey": layer},
            voxel_size_um=_finite(attrs.get("voxel_size_um")),
        )
    if result.kind == "segment":
        present = dataset_paths(path)
        layers: dict[str, Layer] = {}
        grey = _grey_for_segmentation(result)
        if grey is not None and os.path.exists(grey[0]):
            layers["grey"] = _volume_layer("grey", *grey)
        for name in ("pore_mask", "electrode_mask"):
            if f"/{name}" in present:
                layers[name] = _volume_layer(name, path, f"/{name}", mask=True)
        if not layers:
            raise EngineInputError(f"{result} holds no volume to show")
        info = volume_info(path, "/electrode_mask" if "electrode_mask" in layers else "/pore_mask")
        summary = result.summary or {}
        bounds = summary.get("region_bounds")
        axis = summary.get("thickness_axis", info.attrs.get("thickness_axis"))
        voxel = _finite(info.attrs.get("voxel_size_um", summary.get("voxel_size_um")))
        if voxel is None and "grey" in layers:
            voxel = _finite(volume_info(*grey).attrs.get("voxel_size_um"))
        return Source(
            title=str(result),
            kind="volume",
            layers=layers,
            voxel_size_um=voxel,
            region_axis=int(axis) if isinstance(axis, int | float) else None,
            region_bounds=[int(b) for b in bounds] if bounds else None,
        )
    raise EngineInputError(f"a {result.kind} result has no volume for the slice viewer")


def source_for_dataset(dataset: Dataset) -> Source:
    """The viewer source of an XCT reconstruction or NXtomo projections dataset."""
    path = _file(dataset)
    if dataset.kind == "xct_reconstruction":
        attrs = volume_info(path, RECONSTRUCTION_PATH).attrs
        return Source(
            title=str(dataset),
            kind="volume",
            layers={"grey": _volume_layer("grey", path, RECONSTRUCTION_PATH)},
            voxel_size_um=_finite(attrs.get("voxel_size_um")),
        )
    if dataset.kind == "xct_projections":
        info = read_nxtomo_info(path)
        shape = (info.n_images, info.n_rows, info.n_cols)
        pixel = info.pixel_size_m * 1e6 if info.pixel_size_m else None
        return Source(
            title=str(dataset),
            kind="nxtomo",
            layers={"raw": Layer("raw", path, DATA_PATH, shape)},
            voxel_size_um=pixel,
            nxtomo_path=path,
            nxtomo=info,
        )
    raise EngineInputError(f"a {dataset.get_kind_display()} dataset has no slices to show")
