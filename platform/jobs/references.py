"""Job parameters that name data: references to datasets and results, never server paths.

A parameter such as compton's ``mask`` or events' ``calibration_path`` names data. In a job it
is given as ``{"dataset": 12}`` or ``{"result": 7, "path": "/li_stoichiometry"}`` (``path``
names an HDF5 dataset inside the file, checked against what the file holds). The platform
looks the object up with the same scope as a download (the requester's projects; anything
else, and anything that does not exist, is "not found" with no word about other projects)
and only the worker's :func:`resolve` turns it into a file path for the engine. Strings that
look like paths are refused in every other parameter, so no user string reaches ``open()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalogue.models import Dataset
from projects import store
from projects.permissions import scope_queryset

from analysis_engine.errors import EngineInputError
from analysis_engine.io.common import dataset_paths

from .engine_registry import JOB_KINDS, DataParameter, is_reference, looks_like_path
from .models import Result

__all__ = [
    "ReferenceNotFound",
    "data_kind",
    "check_parameters",
    "resolve",
]

INNER_PATH = re.compile(r"^/[A-Za-z0-9_\-./]*$")
SHAPE = '{"dataset": ID} or {"result": ID, "path": "/dataset/in/the/file"}'


class ReferenceNotFound(EngineInputError):
    """A referenced dataset or result is not among the requester's objects (API: 404)."""


@dataclass(frozen=True)
class Reference:
    model: type
    pk: int
    path: str

    @property
    def label(self) -> str:
        return f"{'dataset' if self.model is Dataset else 'result'} {self.pk}"


def _parse(kind_name: str, name: str, value: Any, spec: DataParameter) -> Reference | None:
    """The reference ``value`` makes, or None for a plain value the option also takes."""
    where = f"{kind_name} option {name}"
    if spec.allow_values and not is_reference(value):
        if looks_like_path(value):
            raise EngineInputError(
                f"{where} takes a value or {SHAPE} (an id of your project's data), not a path"
            )
        return None
    if not isinstance(value, Mapping):
        raise EngineInputError(
            f"{where} names data: give {SHAPE} (an id of your project's data), not a "
            f"{type(value).__name__}"
        )
    keys = set(value)
    if keys - {"dataset", "result", "path"} or len(keys & {"dataset", "result"}) != 1:
        raise EngineInputError(f"{where} names data: give {SHAPE}")
    field = "dataset" if "dataset" in value else "result"
    pk = value[field]
    if isinstance(pk, bool) or not isinstance(pk, int) or pk < 1:
        raise EngineInputError(f"{where}: {field} must be a positive integer id")
    path = value.get("path", "")
    if path:
        if not spec.inner_path:
            raise EngineInputError(f"{where} takes a whole file: give no path")
        if not isinstance(path, str) or not INNER_PATH.match(path) or ".." in path:
            raise EngineInputError(
                f'{where}: path names a dataset inside the file, like "/li_stoichiometry"'
            )
    elif spec.inner_path_required:
        raise EngineInputError(f'{where}: name the dataset inside the file, e.g. "path": "/mask"')
    return Reference(Dataset if field == "dataset" else Result, pk, path)


def data_kind(obj) -> str:
    """The data kind of a dataset or a result (what its job kind produces)."""
    if not isinstance(obj, Result):
        return obj.kind
    kind = JOB_KINDS.get(obj.kind)
    return kind.produces if kind else "report"  # a pipeline's result feeds no stage


def _lookup(ref: Reference, *, project, user):
    """The referenced object, scoped like a download; ReferenceNotFound otherwise."""
    qs = ref.model.objects.all()
    qs = scope_queryset(qs, user) if user is not None else qs.filter(project_id=project.pk)
    obj = qs.filter(pk=ref.pk).first()
    if obj is None:
        raise ReferenceNotFound(f"{ref.label} not found in your projects")
    if obj.project_id != project.pk:
        raise EngineInputError(
            f"{ref.label} belongs to your project {obj.project}, not to {project}: "
            "a job uses data of its own project"
        )
    return obj


def _file_of(obj):
    return obj.file if isinstance(obj, Dataset) else obj.output_file


def _check_inner_path(obj, ref: Reference) -> None:
    held = dataset_paths(store.local_path(_file_of(obj)), what=ref.label)
    if "/" + ref.path.strip("/") in held:
        return
    raise EngineInputError(
        f"{ref.label} holds no dataset {ref.path}; it holds {', '.join(held[:12]) or 'none'}"
    )


def check_parameters(kind, parameters: Mapping[str, Any], *, project, user) -> list[str]:
    """Validate the data references of ``parameters``; return the referenced sha256s.

    Raises
    ------
    ReferenceNotFound
        A referenced id that is not among ``user``'s objects (or does not exist).
    EngineInputError
        A reference of the wrong shape, kind, project or inner path; a path-like string in
        an option that does not name data.
    """
    checksums = []
    for name, value in parameters.items():
        spec = kind.data_parameters.get(name)
        if spec is None:
            if looks_like_path(value):
                raise EngineInputError(
                    f"{kind.name} option {name} takes a value, not a file or data reference"
                )
            continue
        if value is None:
            continue
        ref = _parse(kind.name, name, value, spec)
        if ref is None:
            continue
        obj = _lookup(ref, project=project, user=user)
        if not _file_of(obj):
            raise EngineInputError(f"{ref.label} has no file")
        if isinstance(obj, Dataset) and obj.status != "ready":
            raise EngineInputError(f"{ref.label} ({obj.name}) is {obj.status}, not ready")
        if data_kind(obj) not in spec.accepts:
            raise EngineInputError(
                f"{kind.name} option {name} takes {' or '.join(spec.accepts)}; "
                f"{ref.label} is {data_kind(obj)}"
            )
        if ref.path:
            _check_inner_path(obj, ref)
        checksums.append(obj.sha256)
    return checksums


def resolve(kind, parameters: Mapping[str, Any], *, project) -> tuple[dict, dict[str, str]]:
    """Engine options with each reference replaced by its file path (``file.h5:/inner``).

    Returns the options and ``{path: label}`` so that messages can name the object instead of
    the server path. Runs on the worker; the job's project scopes every lookup again.
    """
    out = dict(parameters)
    labels: dict[str, str] = {}
    for name, spec in kind.data_parameters.items():
        value = parameters.get(name)
        if value is None:
            continue
        ref = _parse(kind.name, name, value, spec)
        if ref is None:
            continue
        obj = _lookup(ref, project=project, user=None)
        path = store.local_path(_file_of(obj))
        labels[path] = f"{ref.label} ({obj})"
        out[name] = f"{path}:{ref.path}" if ref.path else path
    return out, labels
