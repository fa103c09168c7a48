"""The layers of docs/architecture.md, kept by a test.

- ``lint-imports`` (contracts in pyproject.toml): the engine imports no Django, Celery, DRF
  or platform app; the job layer goes views/api/tasks -> dispatch -> execution -> planning ->
  references -> engine registry, and only dispatch and the task shell reach Celery.
- The import graph of ``jobs`` has no cycle at all (also among modules no contract names).
- No function-level imports in ``jobs`` (they hide cycles), except Django's ``ready()`` hook.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "platform" / "jobs"


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")])}
    run = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph.find_modules_directly_imported_by(m) & modules:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return out


def test_the_job_layer_has_no_import_cycle():
    sys.path.insert(0, str(ROOT / "platform"))
    graph = grimp.build_graph("jobs", cache_dir=None)
    modules = {m for m in graph.modules if m == "jobs" or m.startswith("jobs.")}
    assert {"jobs.dispatch", "jobs.execution", "jobs.planning", "jobs.tasks"} <= modules
    assert _cycles(graph, modules) == []


def test_a_cycle_is_found_when_there_is_one():
    """The cycle finder itself, on a graph with a known cycle a -> b -> c -> a."""
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph, {"p.a", "p.b", "p.c", "p.d"}) == [["p.a", "p.b", "p.c"]]


def test_no_function_level_imports_in_the_job_layer():
    found = []
    for path in sorted(JOBS.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if path.name == "apps.py" and node.name == "ready":
                continue  # Django loads app modules that need models in ready()
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} in {node.name}()")
    assert found == []
