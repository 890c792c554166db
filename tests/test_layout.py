"""The package's shape: imports go one way, and the maths imports nothing else of skhftt.

Every ``import`` statement counts, also those inside functions: a lazy
import that closes a cycle still ties two modules into one.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import skhftt

ROOT = Path(skhftt.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {"skhftt": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="skhftt."):
        spec = importlib.util.find_spec(info.name)
        modules[info.name] = Path(spec.origin)
    return modules


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if name in known else base for name in names]


def import_graph() -> dict[str, set[str]]:
    """skhftt module -> the skhftt modules it imports anywhere in its code."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py", set(modules)):
                if name in modules and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def _cycle_through(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*stack[stack.index(child):], child]
            if child not in state and (found := visit(child)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_imports():
    for module in _modules():
        if module in ("skhftt.__main__", "skhftt.cli.__main__"):
            continue
        importlib.import_module(module)


def test_no_import_cycle():
    cycle = _cycle_through(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_space_imports_nothing_else_of_skhftt():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("skhftt.space"):
            outside = {t for t in targets if not t.startswith("skhftt.space")}
            assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("skhftt.corpora", ("skhftt.embedding", "skhftt.detectors", "skhftt.batch",
                            "skhftt.cli", "skhftt.removal", "skhftt.evaluation")),
        ("skhftt.embedding", ("skhftt.detectors", "skhftt.batch", "skhftt.cli",
                              "skhftt.removal", "skhftt.evaluation")),
        ("skhftt.detectors", ("skhftt.batch", "skhftt.cli")),
        ("skhftt.batch", ("skhftt.cli", "skhftt.review")),
        ("skhftt.review", ("skhftt.cli",)),
    ],
)
def test_dependencies_go_one_way(package, forbidden):
    for module, targets in import_graph().items():
        if module == package or module.startswith(package + "."):
            bad = sorted(t for t in targets if t.startswith(forbidden))
            assert not bad, f"{module} imports {bad}"


def test_only_the_command_line_uses_the_review():
    # The review shows and records decisions made elsewhere; nothing below it depends on it.
    for module, targets in import_graph().items():
        if module.startswith(("skhftt.cli", "skhftt.review")):
            continue
        bad = sorted(t for t in targets if t.startswith("skhftt.review"))
        assert not bad, f"{module} imports {bad}"


def test_only_the_compat_module_touches_sklearn_privates():
    for module, path in _modules().items():
        if module == "skhftt._sklearn_compat":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                private = [part for part in name.split(".")[1:] if part.startswith("_")]
                assert not (name.startswith("sklearn") and private), f"{module}: {name}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                assert not any(a.name.startswith("_") for a in node.names), module


def test_importing_skhftt_installs_no_import_hook():
    code = ("import sys; before = list(sys.meta_path); import skhftt, skhftt.detectors; "
            "assert sys.meta_path == before, sys.meta_path")
    subprocess.run([sys.executable, "-c", code], check=True)
