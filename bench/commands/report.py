"""``bench report``: one self-contained HTML page from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UserError

DEFAULT_REPORTS = Path("reports")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML page (verdict, figures, tables) from results",
        description=(
            "Write one HTML page from stored results: the verdict (median R = T(gradient) / "
            "T(forward) per framework and device, against the FLOP theory), the figures and the "
            "full table. The page opens offline: nothing is loaded from the network."
        ),
    )
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="a run id, a results file, a machine folder or a results tree (default: the "
                        "newest run under --results); several make one page")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="the page to write (default: reports/<run-id>.html, or reports/report.html "
                        "for several runs)")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results tree where run ids and the newest run are looked up (default: ./results)")
    p.set_defaults(handler=handle)


def _runs_under(results: Path) -> list[Path]:
    from bench import store

    return store.files(results) if results.is_dir() else []


def resolve(runs: list[str], results: Path) -> list[Path]:
    """The results files that RUN arguments name (paths or run ids), without duplicates."""
    from bench import store

    if not runs:
        found = _runs_under(results)
        if not found:
            raise UserError(f"no results under {results}: run `bench run` first, or name a results file")
        return [max(found, key=lambda f: (f.stem, f.stat().st_mtime))]  # run ids start with the UTC time
    out: list[Path] = []
    for run in runs:
        path = Path(run)
        if path.exists():
            found = store.files(path)
            if not found:
                raise UserError(f"no results files (*.parquet) under {path}")
        elif "/" in run or run.endswith(".parquet"):
            raise UserError(f"no such results file or folder: {run}")
        else:
            known = _runs_under(results)
            found = [f for f in known if f.stem == run] or [f for f in known if f.stem.startswith(run)]
            if not found:
                raise UserError(f"unknown run id {run!r}: no {run}.parquet under {results} "
                                f"(give a results file, or --results DIR)")
            if len({f.stem for f in found}) > 1:
                raise UserError(f"run id {run!r} is ambiguous: {', '.join(sorted(f.stem for f in found))}")
        out.extend(f for f in found if f not in out)
    return out


def handle(args: argparse.Namespace) -> int:
    from bench import report

    found = resolve(args.runs, args.results)
    output = args.output
    if output is None:
        name = f"{found[0].stem}.html" if len(found) == 1 else "report.html"
        output = DEFAULT_REPORTS / name
    written = report.write(found, output)
    print(written)
    return 0
