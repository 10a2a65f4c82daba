"""``bench run``: measure, store the results table, print the summary."""

from __future__ import annotations

import argparse
import re
import secrets
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench import defaults, discovery, frameworks, machine, runner
from bench.device import Device
from bench.errors import UserError
from bench.spec import FRAMEWORKS, Case, Record, Settings

QUICK_BUDGET_S = defaults.QUICK_BUDGET_S
DEFAULT_BUDGET_S = defaults.BUDGET_S
QUICK_PROCESSES = defaults.QUICK_PROCESSES
DEFAULT_PROCESSES = defaults.PROCESSES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="time forward, gradient, backward and step; store results",
        description=(
            "Time every suite case in every framework on every device asked for. "
            "Each framework runs in its own worker process; results go to "
            "RESULTS/<machine>/<run-id>.parquet as each case completes."
        ),
    )
    p.add_argument("--device", default="cpu", metavar="LIST",
                   help="comma-separated devices: cpu, cuda, cuda:N (default: cpu)")
    p.add_argument("--framework", default="", metavar="LIST",
                   help=f"comma-separated, from {', '.join(FRAMEWORKS)} (default: every installed one)")
    p.add_argument("--mode", default="default", metavar="LIST",
                   help="execution modes, comma-separated: 'default' (torch eager, tensorflow "
                        "function, jax jit), 'all', a mode name (eager, compile, function, xla, jit: "
                        "every framework that has it) or FRAMEWORK:MODE (e.g. torch:compile)")
    p.add_argument("--suite", default="", metavar="LIST",
                   help="comma-separated suite names (default: every suite found)")
    p.add_argument("--suites", type=Path, default=None, metavar="DIR",
                   help="folder of suite modules (default: ./suites, else the project's)")
    p.add_argument("--case", action="append", default=[], metavar="K=V,...",
                   help="run this case instead of the grid, e.g. --case batch=8192,width=4096,depth=4 "
                        "(repeatable; needs one --suite whose parameters these are)")
    p.add_argument("--quick", action="store_true",
                   help=f"each suite's small QUICK subset, {QUICK_BUDGET_S} s budget per case")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help=f"steady-state timing budget per case (default {DEFAULT_BUDGET_S}, "
                        f"{QUICK_BUDGET_S} with --quick)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for every framework, the same for all (default: all usable CPUs)")
    p.add_argument("--processes", type=int, default=None, metavar="N",
                   help="measure each case in N worker processes, one after another, and build the "
                        f"CIs from all of them (processes, then rounds; default {DEFAULT_PROCESSES}, "
                        f"{QUICK_PROCESSES} with --quick); each process gets the budget / N")
    p.add_argument("--precision", type=float, default=None, metavar="P",
                   help="after the budget, keep adding rounds until R's 95%% CI has at most this "
                        "relative half-width (e.g. 0.02 for 2%%), up to --max-time per case and process; "
                        "a row that does not get there is marked noisy")
    p.add_argument("--max-time", type=float, default=None, metavar="SECONDS",
                   help=f"with --precision: the longest the rounds of one case may last in one process "
                        f"(default {defaults.MAX_TIME_S:.0f})")
    p.add_argument("--l2", choices=("warm", "flush"), default="warm",
                   help="cache policy before each timed block: 'warm' (default) leaves the caches "
                        "as the last block left them; 'flush' first overwrites a buffer larger than "
                        "the last-level cache (GPU L2: 256 MiB, as triton's do_bench), the same for "
                        "every phase (recorded per row)")
    p.add_argument("--allow-tf32", action="store_true",
                   help="let GPUs use TF32 for float32 matmuls (off by default; recorded)")
    p.add_argument("--machine", default=None, metavar="NAME",
                   help="name of this machine's results folder (default: from the hardware fingerprint)")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results tree (default: ./results)")
    p.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="write the HTML report of the run to DIR/<run-id>.html (default: ./reports)")
    p.add_argument("--no-report", action="store_true", help="write no HTML report")
    p.add_argument("--seed", type=int, default=0, help="seed of data and initial weights (default 0)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help=f"kill a worker that makes no progress for this long (default: "
                        f"{defaults.TIMEOUT_S:.0f}, or {defaults.TIMEOUT_BUDGETS} x budget if larger)")
    p.set_defaults(handler=handle)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_devices(value: str) -> list[str]:
    """``cpu,cuda`` -> ``["cpu", "cuda:0"]``; anything else is a UserError."""
    devices: list[Device] = []
    for text in _split(value) or ["cpu"]:
        try:
            d = Device.parse(text)
        except ValueError:
            raise UserError(f"unknown device {text!r}: use cpu, cuda or cuda:N (e.g. --device cpu,cuda)"
                            ) from None
        if d not in devices:
            devices.append(d)
    if any(d.is_gpu for d in devices) and not machine.has_nvidia_gpu():
        raise UserError("no NVIDIA GPU or driver found on this machine: run with --device cpu")
    return [d.spec for d in devices]


def parse_frameworks(value: str) -> list[str]:
    """Named frameworks (all must be installed), or every installed one."""
    names = [n.lower() for n in _split(value)]
    for n in names:
        if n not in FRAMEWORKS:
            raise UserError(f"unknown framework {n!r}: choose from {', '.join(FRAMEWORKS)}")
    if not names:
        names = [n for n in FRAMEWORKS if frameworks.get(n).available()]
        if not names:
            raise UserError("no framework is installed: pip install 'bench[all]' (see README)")
        return names
    for n in names:
        if not frameworks.get(n).available():
            raise UserError(f"{n} is not installed: pip install 'bench[{n}]', or leave it out of --framework")
    return list(dict.fromkeys(names))


def parse_modes(value: str, names: list[str]) -> list[tuple[str, str]]:
    """(framework, mode) pairs to run, in framework order; UserError for unknown modes."""
    modes = {n: frameworks.get(n).MODES for n in names}
    chosen: set[tuple[str, str]] = set()
    for item in [i.lower() for i in _split(value)] or ["default"]:
        if item == "default":
            chosen |= {(n, frameworks.get(n).DEFAULT_MODE) for n in names}
        elif item == "all":
            chosen |= {(n, m) for n in names for m in modes[n]}
        elif ":" in item:
            fw, mode = item.split(":", 1)
            if fw not in modes:
                raise UserError(f"--mode {item}: {fw!r} is not among the frameworks run ({', '.join(names)})")
            if mode not in modes[fw]:
                raise UserError(f"--mode {item}: {fw} modes are {', '.join(modes[fw])}")
            chosen.add((fw, mode))
        else:
            having = {(n, item) for n in names if item in modes[n]}
            if not having:
                known = "; ".join(f"{n}: {', '.join(m)}" for n, m in modes.items())
                raise UserError(f"unknown mode {item!r}: modes are {known} (or default, all)")
            chosen |= having
    return [(n, m) for n in names for m in modes[n] if (n, m) in chosen]


def parse_cases(values: list[str], suites: list[discovery.Suite]) -> dict[str, list[Case]]:
    """``--case batch=8,width=16`` (repeatable) -> {suite: [Case, ...]}; UserError when malformed."""
    if not values:
        return {}
    if len(suites) != 1:
        raise UserError("--case needs exactly one --suite: the parameters belong to one suite")
    suite = suites[0]
    names = set(suite.cases(quick=True)[0].as_dict())
    cases = []
    for text in values:
        params: dict[str, int] = {}
        for item in _split(text):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not re.fullmatch(r"\d+", value.strip()):
                raise UserError(f"--case {text}: write NAME=INTEGER pairs separated by commas "
                                f"(e.g. {suite.cases(quick=True)[0].id})")
            if key in params:
                raise UserError(f"--case {text}: {key} is given twice")
            params[key] = int(value)
        if set(params) != names:
            raise UserError(f"--case {text}: suite {suite.name} takes exactly "
                            f"{', '.join(sorted(names))}")
        case = Case.of(suite.name, {k: params[k] for k in suite.cases(quick=True)[0].as_dict()})
        if case not in cases:
            cases.append(case)
    return {suite.name: cases}


def make_settings(args: argparse.Namespace) -> Settings:
    usable = machine.usable_cpus()
    threads = usable if args.threads is None else args.threads
    if not 1 <= threads <= usable:
        raise UserError(f"--threads {threads}: this machine lets bench use 1 to {usable} CPUs")
    budget = args.budget if args.budget is not None else (
        QUICK_BUDGET_S if args.quick else DEFAULT_BUDGET_S)
    if not budget > 0:
        raise UserError(f"--budget {budget}: give a positive number of seconds")
    timeout = args.timeout if args.timeout is not None else max(
        defaults.TIMEOUT_S, defaults.TIMEOUT_BUDGETS * budget)
    if not timeout > 0:
        raise UserError(f"--timeout {timeout}: give a positive number of seconds")
    processes = args.processes if args.processes is not None else (
        QUICK_PROCESSES if args.quick else DEFAULT_PROCESSES)
    if not 1 <= processes <= 100:
        raise UserError(f"--processes {processes}: give 1 to 100 worker processes per case")
    if args.precision is not None and not 0 < args.precision < 1:
        raise UserError(f"--precision {args.precision}: give a relative half-width between 0 and 1, "
                        "e.g. 0.02 for 2 %")
    max_time = args.max_time if args.max_time is not None else defaults.MAX_TIME_S
    if args.max_time is not None and args.precision is None:
        raise UserError("--max-time caps --precision: give --precision too")
    if not max_time > 0:
        raise UserError(f"--max-time {max_time}: give a positive number of seconds")
    if args.timeout is None:  # a worker adding rounds for --max-time is not hung
        timeout = max(timeout, 2 * max_time + defaults.TIMEOUT_S if args.precision else timeout)
    return Settings(threads=threads, allow_tf32=args.allow_tf32, budget_s=budget / processes,
                    quick=args.quick, seed=args.seed, timeout_s=timeout, l2=args.l2, processes=processes,
                    precision=args.precision, max_time_s=max_time)


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def handle(args: argparse.Namespace) -> int:
    # Validate everything before starting anything.
    from bench import console, quality, store

    settings = make_settings(args)
    devices = parse_devices(args.device)
    names = parse_frameworks(args.framework)
    pairs = parse_modes(args.mode, names)
    suites, problems = discovery.select(args.suites or discovery.default_dir(), _split(args.suite))
    if args.machine is not None:
        machine.check_name(args.machine)
    cases = parse_cases(args.case, suites)
    jobs = runner.plan(pairs, devices, suites, args.quick, cases)
    if not jobs:
        raise UserError("no suite supports the frameworks asked for: see `bench list`")
    for message in problems:
        console.err.print(f"[yellow]skipping a broken suite: {message}[/]")
    for s in suites:
        lacking = [n for n in names if n not in s.frameworks]
        if lacking:
            console.err.print(f"[yellow]suite {s.name} has no {', '.join(lacking)} version: skipped there[/]")
    console.err.print(
        "modes: " + ", ".join(f"{fw} {mode}" for fw, mode in pairs)
        + ("" if args.mode != "default" else " (the defaults; --mode all runs every mode)")
    )

    fingerprint = machine.fingerprint()
    name = args.machine or machine.machine_id(fingerprint)
    run_id = new_run_id()
    path = args.results / name / f"{run_id}.parquet"
    writer = store.ResultsWriter(path, {
        "run_id": run_id, "machine": name, "fingerprint": fingerprint,
        "settings": asdict(settings),
        "devices": devices, "frameworks_requested": names,
        "suites": [s.name for s in suites],
    })
    envs, held, interrupted = _measure(jobs, settings, run_id, name, writer)
    if not writer.records:
        reasons = "; ".join(f"{k}: {v.get('unavailable')}" for k, v in envs.items())
        if interrupted:
            raise KeyboardInterrupt
        raise UserError(f"no framework can run on {', '.join(devices)} here ({reasons})")
    writer.records.extend(held)
    writer.close(frameworks=envs, interrupted=interrupted, quality=quality.summary(writer.records))
    return _finish(args, writer, path, run_id, interrupted)


def _measure(jobs: list[runner.Job], settings: Settings, run_id: str, name: str, writer
             ) -> tuple[dict[str, dict], list[Record], bool]:
    """Run every job, --processes times; (what each framework reported, rows held back, interrupted)."""
    from bench import console

    envs: dict[str, dict] = {}
    held: list[Record] = []  # rows of a device no framework could use: written only beside others
    with console.ProgressDisplay(sum(len(j.cases) for j in jobs) * settings.processes) as progress:
        try:
            # Process k of every job before process k + 1 of any: the
            # processes of one case lie minutes apart, so the interval also
            # sees the machine change.
            for repeat in range(settings.processes):
                for job in jobs:
                    key = f"{job.framework}:{job.mode}@{job.device}"
                    progress.job_started(job)
                    if repeat and "unavailable" in envs.get(key, {}):
                        progress.job_finished(job, runner.JobOutcome())
                        continue
                    sink = writer.merge if repeat else writer.append
                    outcome = runner.run_job(job, settings, run_id, name, progress, sink, repeat)
                    if not repeat:
                        envs[key] = outcome.env or {"unavailable": outcome.unavailable}
                        if outcome.unavailable:
                            held.extend(outcome.records)
        except KeyboardInterrupt:
            return envs, held, True
    return envs, held, False


def _finish(args: argparse.Namespace, writer, path: Path, run_id: str, interrupted: bool) -> int:
    """Summary, quality warning, report; the exit code."""
    from rich.markup import escape

    from bench import console

    console.out.print(console.summary(writer.records))
    warning = console.quality_warning(writer.records)
    if warning:
        console.err.print(f"[yellow]{escape(warning)}[/]")
    console.out.print(f"results: {path}")
    if not args.no_report:
        from bench import report

        try:
            console.out.print(f"report: {report.write([path], args.reports / f'{run_id}.html')}")
        except Exception as exc:  # the results are stored: a report failure must not lose the run
            console.err.print(f"[yellow]no report written ({escape(str(exc))}); retry with "
                              f"`bench report {path}`[/]")
    if interrupted:
        console.err.print("[yellow]interrupted: the results file holds the cases finished so far[/]")
        return 130
    bad = [r for r in writer.records if r.status in ("failed", "error", "crashed")]
    if bad:
        console.err.print(f"[yellow]{len(bad)} rows did not measure (status failed, error or crashed)[/]")
        return 1
    return 0
