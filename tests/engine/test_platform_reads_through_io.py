"""The platform reads and writes data files only through ``analysis_engine.io``: no module
under ``platform/`` imports h5py (figures, reports, the viewer and previews included)."""

from __future__ import annotations

import ast
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[2] / "platform"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_platform_module_opens_hdf5_itself():
    files = [p for p in PLATFORM.rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 50  # the walk found the platform
    offenders = sorted(str(p.relative_to(PLATFORM)) for p in files if "h5py" in _imports(p))
    assert offenders == []
