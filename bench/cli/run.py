"""``bench run``: measure, store the results table, print the summary."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from bench import backends
from bench.catalog import discovery, loader
from bench.cli import helptext
from bench.core import defaults
from bench.core.cases import Case
from bench.core.device import Device
from bench.core.errors import UserError, did_you_mean
from bench.core.records import FRAMEWORKS, Record
from bench.core.settings import Settings
from bench.execute import fleet, machine, runner
from bench.execute.jobs import Job, plan_jobs
from bench.present import fmt
from bench.present.tables import FORMATS
from bench.stats import row_stats
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


class ResultsUnwritable(Exception):
    """The results file could not be written during the run: the run stops (exit code 3)."""


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
            "see the README, 'Fleet runs')", indent=2))
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


def new_run_id() -> str:
    """The time (UTC, to the second) and 64 random bits: two runs never share an id."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(8)}"


def check_machine(name: str) -> str:
    """``--machine``: a sane folder name (bench.execute.machine's rule, and short enough), or a UserError."""
    machine.check_name(name)
    if len(name) > MAX_MACHINE_CHARS:
        raise UserError(f"--machine {name[:20]}...: {len(name)} characters; use at most {MAX_MACHINE_CHARS}")
    return name


def check_writable(results: Path | str, machine_name: str | None = None, option: str = "--results") -> None:
    """UserError unless a run can be written under ``results`` (in ``machine_name``'s folder).

    A URL is checked by writing and deleting a probe object under it.
    """
    from bench.store import outputs

    if isinstance(results, str) and is_url(results):
        outputs.location(results, option)
        return
    folder = Path(results) / machine_name if machine_name else Path(results)
    _check_folder(folder, option)


def _check_folder(folder: Path, option: str) -> None:
    """UserError unless a file can be created in ``folder``; folders made for the check are removed."""
    made: list[Path] = []
    try:
        for p in reversed((folder, *folder.parents)):
            if p.is_dir():
                continue
            if p.exists() or p.is_symlink():
                raise UserError(f"{option}: {p} is not a folder: choose a folder with {option}")
            p.mkdir()
            made.append(p)
        fd, probe = tempfile.mkstemp(prefix=".bench-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UserError(f"{option}: cannot write in {folder} ({why}): choose a writable folder with "
                        f"{option}") from None
    finally:
        # The results file makes its folder when it is first written: a run that
        # measures nothing leaves nothing behind.
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


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
    from bench.present import console

    _warnings(args, asked)
    name = args.machine or machine.machine_id(machine.fingerprint())
    # Earlier runs of this machine scale the estimate; only a local folder is read (no network).
    earlier = None if is_url(str(args.results)) else Path(args.results) / name
    guess = estimate.estimate(asked.jobs, settings, earlier, report=not args.no_report)
    for line in estimate.describe(asked.jobs, settings, guess):
        console.out.print(Text(line), soft_wrap=True)
    console.out.print(Text(f"results: {args.results}/{name}/<run-id>.parquet"), soft_wrap=True)
    console.out.print(Text("report: none (--no-report)" if args.no_report else
                           f"report: {args.reports}/<run-id>.html"), soft_wrap=True)
    console.out.print(Text("dry run: nothing was run or written"))
    return 0


def _handle(args: argparse.Namespace) -> int:
    # Validate everything before starting anything.
    from bench import store
    from bench.stats import quality

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
    devices, names, suites, jobs = asked.devices, asked.frameworks, asked.suites, asked.jobs
    fingerprint = machine.fingerprint()
    name = args.machine or machine.machine_id(fingerprint)
    check_writable(args.results, name)
    _warnings(args, asked)

    run_id = new_run_id()
    writer = store.new_run(args.results, name, run_id, {
        "run_id": run_id, "machine": name, "fingerprint": fingerprint,
        "settings": asdict(settings),
        "devices": devices, "frameworks_requested": names,
        "suites": [s.name for s in suites],
        # Set by a fleet run (bench.execute.fleet) for the `bench run` it starts on each machine.
        **({"fleet": os.environ[fleet.FLEET_ENV]} if os.environ.get(fleet.FLEET_ENV) else {}),
    })
    path = writer.path
    try:
        envs, held, interrupted = _measure(jobs, settings, run_id, name, writer)
        if not writer.records:
            reasons = "; ".join(f"{k}: {v.get('unavailable')}" for k, v in envs.items())
            if interrupted:
                raise KeyboardInterrupt
            raise UserError(f"no framework can run on {', '.join(devices)} here ({reasons})")
        writer.records.extend(held)
        # The processes' intervals, narrowed by the spread the run's cases share.
        writer.records[:] = row_stats.pool(writer.records)
        try:
            writer.close(frameworks=envs, interrupted=interrupted, quality=quality.summary(writer.records))
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc
    except ResultsUnwritable as exc:
        return _unwritable(path, writer.written, exc)
    return _finish(args, writer, path, run_id, interrupted)


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


def _unwritable(path: Path, written: bool, exc: ResultsUnwritable) -> int:
    """One line: what could not be written, and which file holds the run so far; exit code 3.

    ``written``: whether this run's file was written once (the file at
    ``path`` may be another run's, which the writer refused to replace).
    """
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else None
    why = (cause.strerror or str(cause)) if cause is not None else str(exc)
    kept = _kept(path) if written else "no results file was written"
    print(f"bench: error: cannot write {path} ({why}): the run stopped; {kept}", file=sys.stderr)
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


def _sink(write: Callable[[list[Record]], None]) -> Callable[[list[Record]], None]:
    """``write`` with its OSError (a full disk, a folder gone) turned into ResultsUnwritable."""
    def sink(records: list[Record]) -> None:
        try:
            write(records)
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc

    return sink


def _measure(jobs: list[Job], settings: Settings, run_id: str, name: str, writer
             ) -> tuple[dict[str, dict], list[Record], bool]:
    """Run every job, --processes times; (what each framework reported, rows held back, interrupted)."""
    from bench.present import console

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
                    sink = _sink(writer.merge if repeat else writer.append)
                    outcome = runner.run_job(job, settings, run_id, name, progress, sink, repeat)
                    if not repeat:
                        envs[key] = outcome.env or {"unavailable": outcome.unavailable}
                        if outcome.unavailable:
                            held.extend(outcome.records)
            _more_processes(jobs, settings, run_id, name, writer, progress)
        except KeyboardInterrupt:
            return envs, held, True
    return envs, held, False


def _more_processes(jobs: list[Job], settings: Settings, run_id: str, name: str, writer,
                    progress) -> None:
    """--max-processes: one more process at a time for the cases whose R is still wider than --precision.

    Only cases measured (ok) in several processes can fall short, so a job whose framework was
    unavailable never comes back here.
    """
    for repeat in range(settings.processes, settings.max_processes):
        short = short_of_precision(writer.records, settings.precision)
        todo = [j for j in (_only(job, short) for job in jobs) if j.cases]
        if not todo:
            return
        progress.add(sum(len(j.cases) for j in todo))
        for job in todo:
            progress.job_started(job)
            runner.run_job(job, settings, run_id, name, progress, _sink(writer.merge), repeat)


def short_of_precision(records: list[Record], precision: float | None) -> set[tuple[str, ...]]:
    """The cases (``row_stats.case_key``) whose R, over their processes so far, is wider than ``precision``."""
    if precision is None:
        return set()
    return {row_stats.case_key(r) for r in row_stats.pool(records)
            if r.phase == "gradient" and r.status == "ok" and len(r.process_rounds) > 1 and r.ratio > 0
            and not (r.ratio_ci_high - r.ratio_ci_low) / 2 / r.ratio <= precision}


def _only(job: Job, keys: set[tuple[str, ...]]) -> Job:
    """``job`` with only the cases named by ``keys``."""
    suites = tuple((suite, tuple(c for c in cases
                                 if (c.suite, c.id, job.framework, job.mode, job.device) in keys))
                   for suite, cases in job.suites)
    return replace(job, suites=tuple((s, cs) for s, cs in suites if cs))


def _finish(args: argparse.Namespace, writer, path: Path, run_id: str, interrupted: bool) -> int:
    """Summary, quality warning, report; the exit code."""
    from rich.text import Text

    from bench.present import console

    console.show_summary(writer.records, args.form)
    warning = console.quality_warning(writer.records)
    if warning:
        console.warn(warning)
    # With json, stdout holds the one document a script parses.
    where = console.err if args.form == "json" else console.out
    where.print(Text(f"results: {path}"))
    if not args.no_report:
        from bench.present import report

        try:
            where.print(Text(f"report: {report.write([path], args.reports / f'{run_id}.html')}"))
        except Exception as exc:  # the results are stored: a report failure must not lose the run
            console.warn(f"no report written ({exc}); retry with `bench report {path}`")
    if interrupted:
        console.err.print("[yellow]interrupted: the results file holds the cases finished so far[/]")
        return EXIT_INTERRUPTED
    bad = [r for r in writer.records if r.status in ("failed", "error", "crashed")]
    if bad:
        console.err.print(f"[yellow]{fmt.plural(len(bad), 'row')} did not measure "
                          "(status failed, error or crashed)[/]")
        return 1
    return 0
