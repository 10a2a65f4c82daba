"""``bench import``: a pytest-benchmark JSON file into bench's results store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="store a pytest-benchmark JSON file as a bench run",
        description="Read a pytest-benchmark JSON file (from `bench export --format pytest-benchmark` "
                    "or `pytest suites/ --benchmark-only --benchmark-json=FILE`) and store it as a "
                    "run under RESULTS/<machine>/, where bench compare and bench report read it.",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--machine", required=True, metavar="NAME", help="machine folder to store it under")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results tree (default: ./results)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import export, machine, store
    from bench.commands.run import new_run_id

    machine.check_name(args.machine)
    try:
        doc = json.loads(args.file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {args.file} as JSON ({exc})") from exc
    if not isinstance(doc, dict) or "benchmarks" not in doc:
        raise UserError(f"{args.file} is not a pytest-benchmark file (no 'benchmarks')")
    run_id = new_run_id()
    records, skipped = export.from_pytest_benchmark(doc, run_id, args.machine)
    if not records:
        raise UserError(f"{args.file} has no benchmark that names a bench suite, case, framework "
                        "and phase (only files from bench export or pytest suites/ can be imported)")
    path = args.results / args.machine / f"{run_id}.parquet"
    writer = store.ResultsWriter(path, {"run_id": run_id, "machine": args.machine,
                                        "imported_from": str(args.file),
                                        "fingerprint": {"cpu": (doc.get("machine_info") or {})
                                                        .get("processor", "")}})
    writer.append(records)
    writer.close()
    for name in skipped:
        print(f"skipped (not a bench case): {name}")
    print(f"imported {len(records)} benchmarks: {path}")
    return 0
