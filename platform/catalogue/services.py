"""ORM orchestration for datasets: hashing and format checking of a stored file."""

from __future__ import annotations

import hashlib
import re

from django.db.models import ProtectedError, RestrictedError
from projects import store

from analysis_engine.errors import EngineInputError
from analysis_engine.io.sniff import sniff
from catalogue.models import ComptonCalibration, Dataset, DatasetStatus

CHUNK_BYTES = 4 * 1024 * 1024


def file_sha256(path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def validate_dataset_file(dataset: Dataset, *, compute_checksum: bool = True) -> Dataset:
    """Hash (unless already known) and sniff the stored file; set status ready or rejected.

    A file whose content is another kind than declared, or that breaks its format, is kept
    with status ``rejected`` and the engine's message.
    """
    path = store.local_path(dataset.file)
    if compute_checksum or not dataset.sha256:
        dataset.sha256, dataset.size = file_sha256(path)
    try:
        declared = None if dataset.kind in ("", "other") else dataset.kind
        info = sniff(path, expected_kind=declared)
    except EngineInputError as exc:
        dataset.status = DatasetStatus.REJECTED
        dataset.status_message = str(exc)
    else:
        if dataset.kind in ("", "other"):
            dataset.kind = info.kind
        dataset.status = DatasetStatus.READY
        dataset.status_message = info.describe()
        dataset.metadata = {**info.metadata, **(dataset.metadata or {}), "format": info.format}
    dataset.save()
    return dataset


def verify_checksum(dataset: Dataset) -> bool:
    """True when the stored file still hashes to the recorded sha256."""
    if store.remote():  # the cache entry is keyed by the sha256: read the store's bytes
        with store.open_stream(dataset.file) as fh:
            digest, size = hashlib.sha256(), 0
            while chunk := fh.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest() == dataset.sha256 and size == dataset.size
    digest, size = file_sha256(store.local_path(dataset.file))
    return digest == dataset.sha256 and size == dataset.size


def delete_refusal(obj) -> str | None:
    """Why ``obj`` cannot be deleted (objects still linked to it), or None."""
    from django.db import router
    from django.db.models.deletion import Collector

    collector = Collector(using=router.db_for_write(type(obj)))
    try:
        collector.collect([obj])
    except (ProtectedError, RestrictedError) as exc:
        from projects.api.exceptions import protected_message

        return protected_message(exc)
    return None


#: engine option -> (Cell field, factor from the catalogue's unit to the engine's)
CELL_ENGINE_OPTIONS = {
    "area_cm2": ("electrode_area_cm2", 1.0),
    "concentration_mol_cm3": ("li_concentration_mol_l", 1e-3),  # 1 mol/L = 1e-3 mol/cm^3
}


def cell_engine_options(cell) -> dict[str, float]:
    """The engine options a cell's catalogue entry fixes (electrode area, Li+ concentration),
    in the engine's units; fields left empty are left out."""
    if cell is None:
        return {}
    out = {}
    for option, (field, factor) in CELL_ENGINE_OPTIONS.items():
        value = getattr(cell, field, None)
        if value is not None:
            out[option] = float(value) * factor
    return out


_RATIOS = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)(?![\w.:])"
)


def cathode_composition(cell) -> list[float] | None:
    """The (active material, carbon, binder) weight ratios of ``cell``'s cathode, from the
    sample's ``composition`` ("NMC811:C65:PVDF 90:5:5" or "90:5:5", in that order), or None
    when the catalogue does not record three ratios (then no default is assumed)."""
    text = getattr(getattr(cell, "cathode", None), "composition", "") or ""
    found = _RATIOS.findall(text)
    if len(found) != 1:
        return None
    ratios = [float(v) for v in found[0]]
    return ratios if sum(ratios) > 0 else None


def with_catalogue_options(accepted, cell, parameters: dict) -> dict:
    """``parameters`` with the options the cell's catalogue entry fixes, for an engine function
    that accepts them (``accepted``: its option names). The catalogue is the record of the
    cell, so it wins; a parameter given explicitly that contradicts it is refused rather than
    silently overridden; options the catalogue leaves empty fall back to the parameters (and
    then the engine's defaults).

    Raises
    ------
    EngineInputError
        A parameter that disagrees with the catalogue by more than 1e-9 relative.
    """
    params = dict(parameters)
    for option, value in cell_engine_options(cell).items():
        if option not in accepted:
            continue
        given = params.get(option)
        if given is not None:
            try:
                same = abs(float(given) - value) <= 1e-9 * max(abs(value), 1e-300)
            except (TypeError, ValueError):
                same = False
            if not same:
                field = CELL_ENGINE_OPTIONS[option][0]
                raise EngineInputError(
                    f"{option}={given!r} contradicts cell {cell.name}'s catalogue entry "
                    f"({field} gives {value:g}); edit the cell or leave {option} out"
                )
        params[option] = value
    return {k: params[k] for k in sorted(params)}


def with_beamtime_options(accepted, dataset, parameters: dict) -> dict:
    """``parameters`` with the instrument geometry of ``dataset``'s beamtime as the
    ``geometry`` option, and its latest Compton calibration (for its detector) as the
    ``calibration`` option, for an engine function that accepts them (``accepted``: its option
    names), unless the parameters give their own or the beamtime records none."""
    params = dict(parameters)
    beamtime = getattr(dataset, "beamtime", None)
    if "geometry" in accepted and params.get("geometry") is None and beamtime is not None:
        geometry = beamtime.instrument_geometry()
        if geometry is not None:
            params["geometry"] = geometry
    if (
        "calibration" in accepted
        and "calibration_points" in accepted  # a map job, not the calibration itself
        and params.get("calibration") is None
        and params.get("calibration_points") is None
        and beamtime is not None
    ):
        calibration = ComptonCalibration.latest_for(beamtime)
        if calibration is not None:  # its stored fit, covariance included
            params["calibration"] = {"result": calibration.result_id}
    return {k: params[k] for k in sorted(params)}
