"""``bench env``: this machine's fingerprint and what each framework sees."""

from __future__ import annotations

import argparse
import json

from bench import backends
from bench.cli import helptext
from bench.core.records import FRAMEWORKS
from bench.execute import machine


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "env", summary="this machine's fingerprint and what each framework can see",
        description=["Print the machine fingerprint stored with every result, then start each installed "
                     "framework in its own process and report its version, devices and thread and "
                     "numerics settings."],
        examples=(
            ("bench env", "the fingerprint and a table of the frameworks"),
            ("bench env --json", "the same as one JSON object, for scripts"),
            ("bench env --threads 1", "what each framework reports when limited to one thread"),
        ),
        exit_codes=((0, "printed (a framework that cannot start is shown with the reason)"), helptext.USAGE,
                    helptext.INTERRUPTED),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads to configure each framework with (default: all usable CPUs)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench.core.errors import UserError
    from bench.execute import runner
    from bench.present.console import out

    usable = machine.usable_cpus()
    threads = args.threads or usable
    if not 1 <= threads <= usable:
        raise UserError(f"--threads {threads}: this machine lets bench use 1 to {usable} CPUs")
    fp = machine.fingerprint()
    seen = {}
    for name in FRAMEWORKS:
        if backends.get(name).available():
            seen[name] = runner.probe(name, threads)
        else:
            seen[name] = {"installed": False, "hint": f"pip install 'bench[{name}]'"}
    if args.json:
        print(json.dumps({"machine": machine.machine_id(fp), "fingerprint": fp, "frameworks": seen},
                         indent=2))
        return 0

    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"machine {machine.machine_id(fp)}", show_header=False)
    for k, v in fp.items():
        t.add_row(Text(k), Text(json.dumps(v) if isinstance(v, list | dict) else str(v)))
    out.print(t)
    f = Table(title="frameworks")
    for col in ("framework", "version", "devices", "settings"):
        f.add_column(col)
    for name, info in seen.items():
        if "error" in info or not info.get("installed", True):
            f.add_row(name, "-", "-", Text(info.get("error") or f"not installed ({info['hint']})"))
            continue
        settings = ", ".join(f"{k}={v}" for k, v in info["settings"].items())
        f.add_row(name, Text(str(info["version"])), Text(", ".join(info["devices"])), Text(settings))
    out.print(f)
    return 0
