"""Fleet runs on Dask: one `bench run` on every machine of a cluster, into one shared store.

Each machine runs one Dask worker that offers the resource ``bench=1``
(``dask worker tcp://HOST:PORT --nworkers 1 --nthreads 1 --resources bench=1
--name NAME``). The client (``bench run --cluster tcp://HOST:PORT``) sends
every chosen machine one task: run ``python -m bench run ...`` there, with the
usual worker subprocesses, writing straight into the shared ``--results`` URL
under that machine's name. The resource lets one benchmark run on a machine
at a time; the task is pinned to its machine by name, so a task never moves to
another machine (that would measure a different one).

While the tasks run, each sends its progress (cases done, the current case)
through a Dask ``Variable``; the client shows one line per machine. A machine
whose worker leaves is lost: its finished cases are already in the store, the
others go on, and the summary names what it lost. ``--retry N`` waits for a
lost machine to come back (a worker of the same name) and runs it again, at
most N times. Ctrl-C sets a Dask ``Event`` that every task watches: each stops
its ``bench run`` (SIGINT, so its results so far are kept) and the client
exits 130.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core import clock
from bench.core.errors import UserError, did_you_mean

RESOURCE = "bench"
# The environment a machine's `bench run` reads: the fleet run it belongs to,
# and where its progress display also writes JSON lines.
FLEET_ENV = "BENCH_FLEET_ID"
PROGRESS_ENV = "BENCH_PROGRESS_FILE"
# The pid of the Dask worker that started a machine's `bench run`: that run
# stops (SIGTERM, results kept) when the worker dies, instead of measuring on
# as an orphan beside whatever the machine does next.
PARENT_ENV = "BENCH_DIE_WITH_PARENT"
PR_SET_PDEATHSIG = 1
POLL_S = 0.5
# How long a lost machine may take to come back under --retry.
RETURN_TIMEOUT_S = 300.0


def new_fleet_id() -> str:
    """UTC start time and 64 random bits, like a run id."""
    return f"fleet-{clock.stamp()}-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Machine:
    """A Dask worker that offers ``bench=1``: one physical machine."""

    name: str
    address: str


@dataclass
class MachineState:
    """What the client knows of one machine's run."""

    name: str
    done: int = 0
    total: int = 0
    current: str = ""
    state: str = "waiting"  # waiting, running, finished, failed, lost, cancelled
    returncode: int | None = None
    detail: str = ""
    attempts: int = 0


@dataclass
class FleetOutcome:
    fleet_id: str
    machines: dict[str, MachineState] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """130 when interrupted; 1 when a machine was lost or a run did not measure everything; else 0."""
        if self.interrupted:
            return 130
        states = self.machines.values()
        if any(m.state != "finished" or m.returncode not in (0, None) for m in states):
            return 1
        return 0


def machines(client: Any, wanted: Sequence[str] | None = None) -> list[Machine]:
    """The workers offering ``bench=1``, by name; ``wanted`` picks some (a UserError for unknown names)."""
    found: dict[str, Machine] = {}
    for address, info in client.scheduler_info()["workers"].items():
        if info.get("resources", {}).get(RESOURCE, 0) < 1:
            continue
        name = str(info.get("name", address))
        if name in found:
            raise UserError(f"two Dask workers call themselves {name!r} ({found[name].address} and "
                            f"{address}): give each machine's worker its own --name")
        found[name] = Machine(name, address)
    if not found:
        raise UserError(f"no Dask worker offers the resource {RESOURCE}=1: start one per machine with "
                        f"`dask worker ADDRESS --nworkers 1 --nthreads 1 --resources {RESOURCE}=1 "
                        "--name NAME`")
    if not wanted:
        return sorted(found.values(), key=lambda m: m.name)
    out = []
    for name in dict.fromkeys(wanted):
        if name not in found:
            raise UserError(f"--machines: no bench worker named {name!r}: {did_you_mean(name, found)}"
                            f"the cluster has {', '.join(sorted(found))}")
        out.append(found[name])
    return out


def _progress_name(fleet_id: str, machine: str) -> str:
    return f"bench-progress-{fleet_id}-{machine}"


def _cancel_name(fleet_id: str) -> str:
    return f"bench-cancel-{fleet_id}"


def run_on_machine(argv: list[str], machine: str, fleet_id: str) -> dict[str, Any]:
    """The task each machine runs: ``bench run ARGV --machine MACHINE`` as a child process.

    It forwards the child's progress to the client and stops the child
    (SIGINT: its results so far are kept) when the fleet is cancelled.
    Returns the child's exit code and the last lines of its stderr.
    """
    from distributed import Event, Variable, get_client

    client = get_client()
    progress = Variable(_progress_name(fleet_id, machine), client=client)
    cancel = Event(_cancel_name(fleet_id), client=client)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        events = os.path.join(tmp, "progress.jsonl")
        env = {**os.environ, FLEET_ENV: fleet_id, PROGRESS_ENV: events, PARENT_ENV: str(os.getpid())}
        cmd = [sys.executable, "-m", "bench", "run", *argv, "--machine", machine, "--no-report"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        tail: list[str] = []
        reader = threading.Thread(target=_keep_tail, args=(proc.stderr, tail), daemon=True)
        reader.start()
        seen = 0
        last: dict[str, Any] = {}
        while True:
            finished = proc.poll() is not None
            seen, latest = _read_new(events, seen)
            if latest and latest != last:
                last = latest
                progress.set({**latest, "state": "running"})
            if finished:
                break
            if cancel.is_set():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
            time.sleep(POLL_S)
        reader.join(timeout=5)
        return {"machine": machine, "returncode": proc.returncode, "progress": last, "stderr": tail[-20:]}


def stop_with_parent() -> None:
    """In a machine's `bench run` started by a fleet task: get SIGTERM when that Dask worker dies.

    Linux only (``PR_SET_PDEATHSIG``); elsewhere, and outside a fleet, nothing.
    A worker already gone by now means the run must not start.
    """
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):
        raise SystemExit(130)


def _keep_tail(stream: Any, tail: list[str]) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))
        del tail[:-50]


def _read_new(path: str, offset: int) -> tuple[int, dict[str, Any]]:
    """JSON lines appended to ``path`` since ``offset``: the new offset and the last complete event."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset, {}
    end = data.rfind(b"\n") + 1
    latest: dict[str, Any] = {}
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            latest = json.loads(line)
    return offset + end, latest


def run_fleet(address: str, argv: list[str], wanted: Sequence[str] | None = None, retry: int = 0,
              fleet_id: str | None = None, show: Callable[[FleetOutcome], None] | None = None,
              connect_timeout_s: float = 30.0) -> FleetOutcome:
    """Run ``bench run ARGV`` on every chosen machine of the cluster at ``address``; what happened."""
    from distributed import Client

    try:
        client = Client(address, timeout=connect_timeout_s, set_as_default=False)
    except OSError as exc:
        raise UserError(f"--cluster {address}: cannot reach the Dask scheduler ({exc})") from None
    try:
        outcome = FleetOutcome(fleet_id or new_fleet_id())
        fleet = _Fleet(client, argv, machines(client, wanted), retry, outcome)
        for m in fleet.chosen.values():
            fleet.submit(m)
        try:
            while any(s.state in ("running", "waiting") for s in fleet.outcome.machines.values()):
                fleet.poll()
                if show is not None:
                    show(fleet.outcome)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            fleet.cancel()
        if show is not None:
            show(fleet.outcome)
        return fleet.outcome
    finally:
        client.close()


@dataclass
class _Fleet:
    """The client's side of a fleet run in progress: one task per machine, and what each is doing."""

    client: Any
    argv: list[str]
    machines: list[Machine]
    retry: int
    outcome: FleetOutcome
    futures: dict[str, Any] = field(default_factory=dict)
    lost_since: dict[str, float] = field(default_factory=dict)

    @property
    def chosen(self) -> dict[str, Machine]:
        return {m.name: m for m in self.machines}

    def submit(self, m: Machine) -> None:
        """Start (or, after it came back, restart) the run on machine ``m``, pinned to it."""
        state = self.outcome.machines.setdefault(m.name, MachineState(m.name))
        state.attempts += 1
        state.state = "running"
        fleet_id = self.outcome.fleet_id
        self.futures[m.name] = self.client.submit(
            run_on_machine, self.argv, m.name, fleet_id, key=f"bench-{fleet_id}-{m.name}-{state.attempts}",
            workers=[m.name], allow_other_workers=False, resources={RESOURCE: 1}, pure=False, retries=0)

    def poll(self) -> None:
        """Read each machine's progress; settle finished tasks; notice machines that left or came back."""
        present = {str(i.get("name")) for i in self.client.scheduler_info()["workers"].values()}
        for name, fut in list(self.futures.items()):
            state = self.outcome.machines[name]
            if state.state == "running":
                _read_progress(self.client, self.outcome.fleet_id, state)
                if fut.done():
                    _settle(state, fut)
                elif name not in present:
                    _lost(state, fut, self.retry, self.lost_since)
            elif state.state == "waiting":
                if name in present:  # the machine came back: run it again (--retry)
                    del self.lost_since[name]
                    self.submit(self.chosen[name])
                elif time.monotonic() - self.lost_since[name] > RETURN_TIMEOUT_S:
                    state.state = "lost"
                    state.detail += f"; it did not come back within {RETURN_TIMEOUT_S:.0f} s"

    def cancel(self) -> None:
        """Ctrl-C: ask every machine to stop, wait up to 90 s for them to say how far they got."""
        from distributed import Event

        self.outcome.interrupted = True
        Event(_cancel_name(self.outcome.fleet_id), client=self.client).set()
        deadline = time.monotonic() + 90
        while any(not f.done() for f in self.futures.values()) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        for name, fut in self.futures.items():
            if fut.done():
                _settle(self.outcome.machines[name], fut)
            else:
                fut.cancel()
            if self.outcome.machines[name].state in ("running", "waiting"):
                self.outcome.machines[name].state = "cancelled"


def _read_progress(client: Any, fleet_id: str, state: MachineState) -> None:
    """The machine's latest progress, if it sent any (a read must never end the run)."""
    from distributed import Variable

    with contextlib.suppress(Exception):
        p = Variable(_progress_name(fleet_id, state.name), client=client).get(timeout=0.1)
        state.done, state.total, state.current = p.get("done", 0), p.get("total", 0), p.get("current", "")


def _settle(state: MachineState, fut: Any) -> None:
    """A finished task: its machine's exit code, or why the task failed."""
    try:
        result = fut.result()
    except Exception as exc:  # the worker died or the task raised: the machine is lost
        state.state, state.detail = "lost", f"{type(exc).__name__}: {exc}"[:300]
        return
    state.returncode = result["returncode"]
    p = result.get("progress") or {}
    state.done, state.total = p.get("done", state.done), p.get("total", state.total)
    if result["returncode"] in (0, 1):
        state.state = "finished"
        if result["returncode"] == 1:
            state.detail = "some rows did not measure (failed, error or crashed)"
    elif result["returncode"] == 130:
        state.state, state.detail = "cancelled", "interrupted"
    else:
        state.state = "failed"
        state.detail = (result.get("stderr") or ["(no message)"])[-1][:300]


def _lost(state: MachineState, fut: Any, retry: int, lost_since: dict[str, float]) -> None:
    """The machine's worker left the cluster mid-run."""
    fut.cancel()
    unfinished = f", lost while on {state.current}" if state.current else ""
    state.detail = f"its worker left after {state.done} of {state.total or '?'} cases{unfinished}"
    if state.attempts <= retry:
        state.state = "waiting"
        lost_since[state.name] = time.monotonic()
    else:
        state.state = "lost"
