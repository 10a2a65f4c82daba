"""Finds suites: every suite module in a folder, each imported in a child process first (like asv,
by path), and the suites a command line names."""


from __future__ import annotations

from pathlib import Path

from bench.catalog import isolation
from bench.catalog.loader import Suite, load_file
from bench.core.errors import UserError, did_you_mean


def default_dir() -> Path:
    """``./suites`` when run from a project folder, else the suites shipped beside bench."""
    here = Path.cwd() / "suites"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "suites"


def load_dir(directory: Path) -> tuple[list[Suite], list[str]]:
    """Every suite in ``directory``, and one message per file that is not a valid suite."""
    if not directory.is_dir():
        raise UserError(f"suites folder {directory} does not exist: pass --suites DIR")
    # _private.py helpers, and pytest's files (suites/test_suites.py runs the
    # suites under pytest-benchmark) are not suites.
    paths = [p for p in sorted(directory.glob("*.py"))
             if not p.name.startswith(("_", "test_")) and p.name != "conftest.py"]
    # A suite that exits, crashes or hangs at import would take bench with it:
    # each is imported in a child process first, and only those that pass here.
    bad = isolation.check(paths) if paths else {}
    suites, problems = [], []
    for path in paths:
        if path in bad:
            problems.append(bad[path])
            continue
        try:
            suites.append(load_file(path))
        except UserError as exc:
            problems.append(str(exc))
    return suites, problems


def select(directory: Path, names: list[str] | None) -> tuple[list[Suite], list[str]]:
    """The suites named (all when ``names`` is empty), and warnings about broken files."""
    suites, problems = load_dir(directory)
    if not names:
        if not suites:
            raise UserError(f"no suites found in {directory}: pass --suites DIR")
        return suites, problems
    names = list(dict.fromkeys(names))  # --suite a,a measures a once
    by_name = {s.name: s for s in suites}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        broken = [p for p in problems if any(p.startswith(f"suite {n} ") for n in unknown)]
        if broken:
            raise UserError(broken[0])
        known = ", ".join(sorted(by_name)) or "none"
        hint = did_you_mean(unknown[0], by_name)
        raise UserError(f"unknown suite {unknown[0]!r} in {directory}: {hint}known suites are {known}")
    return [by_name[n] for n in names], problems
