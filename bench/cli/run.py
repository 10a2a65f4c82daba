"""``bench run``: measure, store the results table, print the summary."""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import backends
from bench.catalog import discovery, loader
from bench.cli import helptext
from bench.core import defaults, fmt
from bench.core.cases import Case, parse_id
from bench.core.device import Device
from bench.core.errors import UserError, did_you_mean
from bench.core.records import FRAMEWORKS
from bench.core.settings import Settings
from bench.execute import fleet, machine, session
from bench.execute.jobs import Job, plan_jobs
from bench.present.tables import FORMATS
from bench.store import outputs
from bench.store.location import is_url, results_arg

QUICK_BUDGET_S = defaults.QUICK_BUDGET_S
DEFAULT_BUDGET_S = defaults.BUDGET_S
QUICK_PROCESSES = defaults.QUICK_PROCESSES
DEFAULT_PROCESSES = defaults.PROCESSES

# Sane bounds of the numbers a run takes (larger ones overflow the waits and
# timers, or the frameworks' seeds, long after the run started).
MAX_BUDGET_S = 3600.0  # one hour of timed blocks per case
MAX_TIMEOUT_S = 86400.0  # one day without progress
MAX_SEED = 2**32 - 1  # NumPy's and JAX's seeds are 32-bit
# A machine name is a folder name, and run files sit under it: well below
# the 255 bytes a file name may have.
MAX_MACHINE_CHARS = 100

# bench run's exit codes besides 0, 1 and 2 (bench.cli.main).
EXIT_UNWRITABLE = 3
EXIT_INTERRUPTED = 130
EXIT_CODES = (
    (0, "every row measured (with --dry-run: the plan was printed)"),
    (1, "some rows failed, errored or crashed (the results file holds the others); with --cluster: "
        "a machine left or did not measure every row"),
    (2, "a mistake in the command, found before anything runs (nothing is written), or no framework "
        "could use the device asked for"),
    (EXIT_UNWRITABLE, "the results could not be written during the run (the run stops; the cases "
                      "finished before it are kept as shards, which bench report reads)"),
    (EXIT_INTERRUPTED, "interrupted by Ctrl-C or SIGTERM (the cases finished so far are kept)"),
)
EXAMPLES = (
    ("bench run --quick", "every suite's small QUICK subset, every installed framework, on the CPU"),
    ("bench run --dry-run --suite mlp_regression --framework torch,jax",
     "print the jobs, cases and budget, and an estimated wall time; run and write nothing"),
    ("bench run --device cuda --mode all --suite mlp_regression --processes 5",
     "every mode of every framework on the first GPU, each case in 5 worker processes"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "run", summary="time forward, gradient, backward and step; store results",
        description=["Time every suite case in every framework on every device asked for. Each framework "
                     "runs in its own worker process; results go to RESULTS/<machine>/<run-id>.parquet as "
                     "each case completes. --dry-run prints the plan and an estimated wall time instead."],
        examples=EXAMPLES, exit_codes=EXIT_CODES,
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
    p.add_argument("--format", choices=FORMATS, default="table", dest="form",
                   help="how the summary is printed: table (default, fitted to the terminal), plain "
                        "(aligned, every column, no box characters), markdown, or json (one document on "
                        "stdout, numbers as numbers; the results: and report: lines go to stderr)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (jobs, suites and cases, processes, budget) and an estimated wall "
                        "time, then exit; imports no framework and writes nothing")
    _add_timing_options(p)
    p.add_argument("--machine", default=None, metavar="NAME",
                   help="name of this machine's results folder (default: from the hardware fingerprint)")
    p.add_argument("--results", type=results_arg, default=Path("results"), metavar="DIR|URL",
                   help="results tree, a folder or a URL such as s3://bucket/results (default: ./results); "
                        "checked writable before anything runs")
    p.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="write the HTML report of the run to DIR/<run-id>.html (default: ./reports)")
    p.add_argument("--no-report", action="store_true", help="write no HTML report")
    p.add_argument("--seed", type=int, default=0,
                   help=f"seed of data and initial weights, 0 to {MAX_SEED} (default 0)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help=f"kill a worker that makes no progress for this long: the worker sends a heartbeat "
                        f"while timed blocks keep ending, so a slow case is not hung, but one call (or "
                        f"a stage of a case such as building the model) must end within it (default: "
                        f"{defaults.TIMEOUT_S:.0f}, or {defaults.TIMEOUT_BUDGETS} x budget if larger; "
                        f"at most {MAX_TIMEOUT_S:.0f})")
    _add_fleet_options(p)
    p.set_defaults(handler=handle)


def _add_timing_options(p: argparse.ArgumentParser) -> None:
    """How each case is timed: budget, threads, processes, precision, cache and TF32."""
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
    p.add_argument("--max-processes", type=int, default=None, metavar="N",
                   help="with --precision: a case whose R is still wider than asked after --processes "
                        "gets one more worker process at a time, up to N (rounds narrow each process; "
                        "only more processes narrow the spread between them)")
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


def _add_fleet_options(p: argparse.ArgumentParser) -> None:
    """--cluster, --machines and --retry: a fleet run (bench.execute.fleet)."""
    fleet = p.add_argument_group(
        "fleet runs", helptext.paragraphs(
            "run the same plan on every machine of a Dask cluster, into one shared --results (one worker "
            "per machine: dask worker ADDRESS --nworkers 1 --nthreads 1 --resources bench=1 --name NAME; "
            "see docs/fleet.md)", indent=2))
    fleet.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="the Dask scheduler, e.g. tcp://HOST:8786; each machine writes into --results "
                            "(a URL or a folder they all mount) under its worker name; one report at the end")
    fleet.add_argument("--machines", default="", metavar="LIST",
                       help="with --cluster: only these machines (worker names, comma-separated)")
    fleet.add_argument("--retry", type=int, default=0, metavar="N",
                       help="with --cluster: run a machine that left mid-run again when it comes back, "
                            "at most N times (default 0; never on another machine)")


# Options a fleet run forwards to each machine's `bench run`, as given.
FORWARDED = ("device", "framework", "mode", "suite", "suites", "quick", "budget", "threads", "processes",
             "precision", "max_processes", "max_time", "l2", "allow_tf32", "seed", "timeout")


_DEFAULTS = {("l2", "warm"), ("device", "cpu"), ("seed", 0)}


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The `bench run` options of this command line that each machine of a fleet gets."""
    out: list[str] = []
    for name in FORWARDED:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value not in (None, False, "", [], "default") and (name, value) not in _DEFAULTS:
            out += [flag, str(value)]
    for case in args.case:
        out += ["--case", case]
    return [*out, "--results", str(args.results)]


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
            raise UserError(f"unknown framework {n!r}: {did_you_mean(n, FRAMEWORKS)}"
                            f"choose from {', '.join(FRAMEWORKS)}")
    if not names:
        names = [n for n in FRAMEWORKS if backends.get(n).available()]
        if not names:
            raise UserError("no framework is installed: pip install 'bench[all]' (see README)")
        return names
    for n in names:
        if not backends.get(n).available():
            raise UserError(f"{n} is not installed: pip install 'bench[{n}]', or leave it out of --framework")
    return list(dict.fromkeys(names))


def parse_modes(value: str, names: list[str]) -> list[tuple[str, str]]:
    """(framework, mode) pairs to run, in framework order; UserError for unknown modes."""
    modes = {n: backends.get(n).MODES for n in names}
    chosen: set[tuple[str, str]] = set()
    for item in [i.lower() for i in _split(value)] or ["default"]:
        if item == "default":
            chosen |= {(n, backends.get(n).DEFAULT_MODE) for n in names}
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
                every = {m for ms in modes.values() for m in ms} | {"default", "all"}
                raise UserError(f"unknown mode {item!r}: {did_you_mean(item, every)}"
                                f"modes are {known} (or default, all)")
            chosen |= having
    return [(n, m) for n in names for m in modes[n] if (n, m) in chosen]


def parse_cases(values: list[str], suites: list[loader.Suite]) -> dict[str, list[Case]]:
    """``--case batch=8,width=16`` (repeatable) -> {suite: [Case, ...]}; UserError when malformed."""
    if not values:
        return {}
    if len(suites) != 1:
        raise UserError("--case needs exactly one --suite: the parameters belong to one suite")
    suite = suites[0]
    names = set(suite.cases(quick=True)[0].as_dict())
    cases = []
    for text in values:
        pairs = parse_id(",".join(_split(text)))
        if not pairs or not all(re.fullmatch(r"\d+", value) for _, value in pairs):
            raise UserError(f"--case {text}: write NAME=INTEGER pairs separated by commas "
                            f"(e.g. {suite.cases(quick=True)[0].id})")
        params: dict[str, int] = {}
        for key, value in pairs:
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
    if not 0 < budget <= MAX_BUDGET_S:
        raise UserError(f"--budget {budget}: give a number of seconds above 0 and at most {MAX_BUDGET_S:.0f}")
    timeout = args.timeout if args.timeout is not None else max(
        defaults.TIMEOUT_S, defaults.TIMEOUT_BUDGETS * budget)
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise UserError(f"--timeout {timeout}: give a number of seconds above 0 and at most "
                        f"{MAX_TIMEOUT_S:.0f} (one day)")
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed {args.seed}: give an integer from 0 to {MAX_SEED}")
    processes = args.processes if args.processes is not None else (
        QUICK_PROCESSES if args.quick else DEFAULT_PROCESSES)
    if not 1 <= processes <= 100:
        raise UserError(f"--processes {processes}: give 1 to 100 worker processes per case")
    if args.precision is not None and not 0 < args.precision < 1:
        raise UserError(f"--precision {args.precision}: give a relative half-width between 0 and 1, "
                        "e.g. 0.02 for 2 %")
    if args.max_processes is not None:
        if args.precision is None:
            raise UserError("--max-processes adds processes until --precision is reached: "
                            "give --precision too")
        if not processes <= args.max_processes <= 100:
            raise UserError(f"--max-processes {args.max_processes}: give {processes} (--processes) to 100")
    max_time = args.max_time if args.max_time is not None else defaults.MAX_TIME_S
    if args.max_time is not None and args.precision is None:
        raise UserError("--max-time caps --precision: give --precision too")
    if not 0 < max_time <= MAX_TIMEOUT_S:
        raise UserError(f"--max-time {max_time}: give a number of seconds above 0 and at most "
                        f"{MAX_TIMEOUT_S:.0f}")
    if args.timeout is None:  # a worker adding rounds for --max-time is not hung
        timeout = max(timeout, 2 * max_time + defaults.TIMEOUT_S if args.precision else timeout)
        # The waits for a worker cannot take more (and a heartbeat makes the rule moot).
        timeout = min(timeout, MAX_TIMEOUT_S)
    return Settings(threads=threads, allow_tf32=args.allow_tf32, budget_s=budget / processes,
                    quick=args.quick, seed=args.seed, timeout_s=timeout, l2=args.l2, processes=processes,
                    precision=args.precision, max_time_s=max_time, max_processes=args.max_processes or 0)


def check_machine(name: str) -> str:
    """``--machine``: a sane folder name (bench.execute.machine's rule, and short enough), or a UserError."""
    machine.check_name(name)
    if len(name) > MAX_MACHINE_CHARS:
        raise UserError(f"--machine {name[:20]}...: {len(name)} characters; use at most {MAX_MACHINE_CHARS}")
    return name


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (what ``timeout`` and job schedulers send) ends the run as Ctrl-C does.

    The handler raises KeyboardInterrupt in the main thread: the worker is
    killed, the cases finished so far are kept, and the exit code is 130.
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def handle(args: argparse.Namespace) -> int:
    with terminate_as_interrupt():
        fleet.stop_with_parent()  # a machine's run in a fleet ends with its Dask worker
        return _handle(args)


@dataclass(frozen=True)
class Request:
    """What a command line asks of this machine, every part checked: the jobs and what they came from."""

    devices: list[str]
    frameworks: list[str]
    pairs: list[tuple[str, str]]
    suites: list[loader.Suite]
    problems: list[str]  # broken suites, skipped with a warning
    jobs: list[Job]


def _request(args: argparse.Namespace) -> Request:
    """The jobs of this command line, or a UserError before anything starts."""
    devices = parse_devices(args.device)
    names = parse_frameworks(args.framework)
    pairs = parse_modes(args.mode, names)
    suites, problems = discovery.select(args.suites or discovery.default_dir(), _split(args.suite))
    if args.machine is not None:
        check_machine(args.machine)
    cases = parse_cases(args.case, suites)
    jobs = plan_jobs(pairs, devices, suites, args.quick, cases)
    if not jobs:
        raise UserError("no suite supports the frameworks asked for: see `bench list`")
    return Request(devices, names, pairs, suites, problems, jobs)


def _warnings(args: argparse.Namespace, asked: Request) -> None:
    """Broken suites, suites a framework lacks, and the modes run: on stderr."""
    from bench.present import console

    for message in asked.problems:
        console.warn(f"skipping a broken suite: {message}")
    for s in asked.suites:
        lacking = [n for n in asked.frameworks if n not in s.frameworks]
        if lacking:
            console.warn(f"suite {s.name} has no {', '.join(lacking)} version: skipped there")
    console.warn("modes: " + ", ".join(f"{fw} {mode}" for fw, mode in asked.pairs)
                 + ("" if args.mode != "default" else " (the defaults; --mode all runs every mode)"),
                 style="")


def _dry_run(args: argparse.Namespace, settings: Settings, asked: Request) -> int:
    """The plan and its estimated wall time on stdout; nothing is started, imported or written."""
    from rich.text import Text

    from bench.execute import estimate
    from bench.present import console, plan_view

    _warnings(args, asked)
    name = args.machine or machine.machine_id(machine.fingerprint())
    # Earlier runs of this machine scale the estimate; only a local folder is read (no network).
    earlier = None if is_url(str(args.results)) else Path(args.results) / name
    guess = estimate.estimate(asked.jobs, settings, earlier, report=not args.no_report)
    for line in plan_view.describe(asked.jobs, settings, guess):
        console.out.print(Text(line), soft_wrap=True)
    console.out.print(Text(f"results: {args.results}/{name}/<run-id>.parquet"), soft_wrap=True)
    console.out.print(Text("report: none (--no-report)" if args.no_report else
                           f"report: {args.reports}/<run-id>.html"), soft_wrap=True)
    console.out.print(Text("dry run: nothing was run or written"))
    return 0


def _handle(args: argparse.Namespace) -> int:
    # Validate everything before starting anything.
    from bench.execute import session
    from bench.present import console

    settings = make_settings(args)
    if args.cluster:
        if args.dry_run:
            raise UserError("--dry-run plans a run on this machine: leave out --cluster")
        return _fleet(args)
    if args.machines or args.retry:
        raise UserError("--machines and --retry go with --cluster (a fleet run)")
    asked = _request(args)
    if args.dry_run:
        return _dry_run(args, settings, asked)
    fingerprint = machine.fingerprint()
    name = args.machine or machine.machine_id(fingerprint)
    outputs.results_root(args.results, name)
    _warnings(args, asked)
    plan = session.RunPlan(tuple(asked.jobs), settings, args.results, name, {
        "fingerprint": fingerprint, "devices": asked.devices, "frameworks_requested": asked.frameworks,
        "suites": [s.name for s in asked.suites]})
    with console.ProgressDisplay(plan.cases) as progress:
        outcome = session.execute(plan, progress)
    if outcome.unwritable is not None:
        return _unwritable(outcome)
    return _finish(args, outcome)


def _fleet(args: argparse.Namespace) -> int:
    """`bench run --cluster`: the plan on every machine, then one report over the fleet run."""
    from rich.text import Text

    from bench import store
    from bench.present import console

    if args.machine is not None:
        raise UserError("--machine does not go with --cluster: each machine is named by its Dask worker")
    if not 0 <= args.retry <= 100:
        raise UserError(f"--retry {args.retry}: give 0 to 100")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UserError("--cluster needs Dask distributed: pip install 'bench[fleet]'") from None
    with console.FleetDisplay() as display:
        outcome = fleet.run_fleet(args.cluster, _forwarded(args), _split(args.machines) or None, args.retry,
                                  show=display.show)
    console.out.print(Text(f"fleet run {outcome.fleet_id}: results under {args.results}"))
    for m in outcome.machines.values():
        if m.state != "finished" or m.returncode:
            console.warn(f"{m.name}: {m.state}" + (f": {m.detail}" if m.detail else ""))
    if not args.no_report:
        from bench.present import report

        try:
            runs = store.fleet_runs(args.results, outcome.fleet_id)
            out = report.write(runs, args.reports / f"{outcome.fleet_id}.html")
            console.out.print(Text(f"report: {out}"))
        except Exception as exc:  # the results are stored: a report failure loses nothing
            console.warn(f"no fleet report written ({exc}); retry with `bench report --results "
                         f"{args.results} --fleet {outcome.fleet_id}`")
    return outcome.exit_code


def _unwritable(outcome: session.Outcome) -> int:
    """One line: what could not be written, and which file holds the run so far; exit code 3."""
    error = outcome.unwritable
    why = (error.strerror or str(error)) if error is not None else "unknown"
    # The file at the run's path may be another run's, which the writer refused to replace.
    kept = _kept(outcome.path) if outcome.written else "no results file was written"
    print(f"bench: error: cannot write {outcome.path} ({why}): the run stopped; {kept}", file=sys.stderr)
    return EXIT_UNWRITABLE


def _kept(path: Path | str) -> str:
    """Where the cases finished before a failed write are: the run's file, or (a run stopped before
    its compaction) its shards, which bench.load and bench report read as the run."""
    from bench import store

    try:
        where = store.stored_as(path)
    except OSError:
        where = None
    if where == "shards":
        return (f"the cases finished before it are kept as shards in {store.shard_folder(path)} "
                f"(`bench report {path}` and bench.load read them)")
    return f"the results so far are in {path}" if where == "file" else "no results file was written"


def _finish(args: argparse.Namespace, outcome: session.Outcome) -> int:
    """Summary, quality warning, report; the exit code."""
    from rich.text import Text

    from bench.present import console

    console.show_summary(outcome.records, args.form)
    warning = console.quality_warning(outcome.records)
    if warning:
        console.warn(warning)
    # With json, stdout holds the one document a script parses.
    where = console.err if args.form == "json" else console.out
    where.print(Text(f"results: {outcome.path}"))
    if not args.no_report:
        from bench.present import report

        try:
            written = report.write([outcome.path], args.reports / f"{outcome.run_id}.html")
            where.print(Text(f"report: {written}"))
        except Exception as exc:  # the results are stored: a report failure must not lose the run
            console.warn(f"no report written ({exc}); retry with `bench report {outcome.path}`")
    if outcome.interrupted:
        console.err.print("[yellow]interrupted: the results file holds the cases finished so far[/]")
        return EXIT_INTERRUPTED
    bad = [r for r in outcome.records if r.status in ("failed", "error", "crashed")]
    if bad:
        console.err.print(f"[yellow]{fmt.plural(len(bad), 'row')} did not measure "
                          "(status failed, error or crashed)[/]")
        return 1
    return 0
