"""The packages form floors: imports only point down, so the package graph has no circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(
    p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name not in {"tests"}
)


def package_imports() -> dict[str, set[str]]:
    """Package → the other project packages its modules import (at any depth)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                edges[package] |= {n.split(".")[0] for n in names} & set(PACKAGES) - {package}
    return edges


def test_the_package_import_graph_has_no_circle() -> None:
    edges = package_imports()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import circle: " + " -> ".join([*path, nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for package in PACKAGES:
        if package not in state:
            visit(package, [package])


def test_the_vocabulary_imports_nothing_of_the_project() -> None:
    assert package_imports()["nudge"] == set()
