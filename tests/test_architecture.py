"""The shape of the code, as checks: packages by layer without cycles, small functions, one way each.

import-linter (``lint-imports``, configured in pyproject.toml) checks that a layer imports only the
layers below it; these tests check what it does not: no import cycle between any two modules, the
size of the package's top level and of its functions, and that the concepts with one home are not
spelled again elsewhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

BENCH = ROOT / "bench"
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL = 12


def modules() -> dict[str, Path]:
    """Every module of bench by its dotted name."""
    out = {}
    for path in sorted(BENCH.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Which bench modules each bench module imports, at any depth of its code (lazy imports too)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for target in targets:
                # ``from bench.x import y`` imports bench.x.y when y is a module, else bench.x.
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "bench":
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_of_bench_takes_part_in_an_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    # The check above must be able to fail.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_top_level_shows_the_layers():
    entries = sorted(p.name for p in BENCH.iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_LEVEL, entries
    for package in ("core", "stats", "store", "catalog", "backends", "measure", "execute", "present",
                    "interop", "cli"):
        init = BENCH / package / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"bench/{package}/__init__.py says nothing"


def long_functions(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_is_longer_than_sixty_lines():
    assert long_functions(list(modules().values())) == []


def test_the_length_check_can_fail(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert long_functions([long]) == [f"{long}:1 f ({MAX_FUNCTION_LINES + 1} lines)"]


# Each concept with one home: (what, a pattern that spells it, the one module allowed to).
ONE_HOME = [
    ("an atomic file write (fsync, then rename)", r"os\.fsync\(|os\.replace\(", "bench/store/location.py"),
    ("a timestamp", r"datetime\.now\(|\.isoformat\(|strftime\(", "bench/core/clock.py"),
    ("a results row", r"(?<![\w.])Record\(", "bench/core/records.py"),
    ("a case id", r'",".join\(f"\{k\}=\{v\}"|\.partition\("="\)', "bench/core/cases.py"),
    ("a case key", r"\(r\.suite, r\.case", "bench/core/records.py"),
    ("a percentile interval", r"np\.percentile\(resampled", "bench/stats/bootstrap.py"),
]


@pytest.mark.parametrize(("what", "pattern", "home"), ONE_HOME, ids=[w for w, _, _ in ONE_HOME])
def test_each_concept_is_spelled_in_one_module(what, pattern, home):
    spelled = sorted(str(p.relative_to(ROOT)) for p in modules().values()
                     if re.search(pattern, p.read_text()))
    assert spelled == [home], f"{what} is spelled in {spelled}, not only in {home}"
