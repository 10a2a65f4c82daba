"""``bench import``: a pytest-benchmark JSON file into bench's results store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli import helptext
from bench.core.errors import UserError
from bench.store.location import results_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.interop.importer import MAX_BYTES

    p = helptext.add_command(
        sub, "import", summary="store a pytest-benchmark JSON file as a bench run",
        description=[
            "Read a pytest-benchmark JSON file (from `bench export --format pytest-benchmark` or `pytest "
            "suites/ --benchmark-only --benchmark-json=FILE`) and store it as a run under "
            "RESULTS/<machine>/, where bench compare and bench report read it. It prints the new run's "
            "path.",
            "Every field is checked: a benchmark of a bench case whose numbers are not times (a median "
            "that is not a positive number of seconds, rounds that are not a whole number, ...) stops the "
            "import with a message naming it; benchmarks that name no bench case are skipped. Files "
            "without raw samples (stats.data, which pytest-benchmark's --benchmark-save files lack unless "
            "--benchmark-save-data is given) import their medians, and bench compare then compares "
            "medians without a significance test."],
        examples=(
            ("bench import ci.json --machine ci-runner",
             "store ci.json as a run of the machine folder results/ci-runner"),
            ("bench import /dev/stdin --machine laptop",
             "read the JSON from a pipe on standard input"),
            ("bench import old.json --machine lab --results s3://bucket/results",
             "store it in a shared results tree"),
        ),
        exit_codes=((0, "stored (benchmarks naming no bench case are listed as skipped)"),
                    (2, "a mistake in the command, or a file that is not a pytest-benchmark file of bench "
                        "cases: one line says which field is wrong; nothing is stored"),
                    helptext.INTERRUPTED),
    )
    p.add_argument("file", type=Path, metavar="FILE",
                   help=f"a pytest-benchmark JSON file, a regular file or a pipe of at most "
                        f"{MAX_BYTES // 2**20} MiB")
    p.add_argument("--machine", required=True, metavar="NAME", help="machine folder to store it under")
    p.add_argument("--results", type=results_arg, default=Path("results"), metavar="DIR|URL",
                   help="results tree: a folder or a URL such as s3://bucket/results (default: ./results)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import store
    from bench.execute import machine
    from bench.interop import importer
    from bench.store import outputs

    machine.check_name(args.machine)
    importer.check_source(args.file)
    # Where it goes is checked before the file is read.
    outputs.results_root(args.results, args.machine)
    doc = importer.read_document(args.file)
    run_id = store.new_run_id()
    while store.run_exists(store.run_path(args.results, args.machine, run_id)):  # never overwrite a run
        run_id = store.new_run_id()
    try:
        found = importer.records(doc, run_id, args.machine)
    except UserError as exc:
        raise UserError(f"{args.file}: {exc}") from None
    if not found.records:
        raise UserError(f"{args.file} has no benchmark that names a bench suite, case, framework "
                        "and phase (only files from bench export or pytest suites/ can be imported)")
    meta = {"run_id": run_id, "machine": args.machine, "imported_from": str(args.file),
            "fingerprint": {"cpu": found.processor}}
    if found.threads is not None:
        meta["settings"] = {"threads": found.threads}
    writer = store.new_run(args.results, args.machine, run_id, meta)
    path = writer.path
    try:
        writer.append(found.records)
        writer.close()
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc})") from exc
    for name in found.skipped:
        print(f"skipped (not a bench case): {name}")
    print(f"imported {len(found.records)} benchmarks: {path}")
    return 0
