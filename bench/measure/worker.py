"""The worker: one framework on one device, in its own process.

The runner starts ``python -m bench.measure.worker``, writes a job (one JSON line) on
its stdin and reads events (JSON lines) from its stdout: ``bench.measure.protocol``
holds both, typed. Between cases the worker waits for one more line on its
stdin: the runner sends it once it has stored the case's rows, so the
runner's own work (statistics, the file write) never runs beside a timed
round. Only this process imports the framework, so TensorFlow and JAX never
share a process or fight over GPU memory, and a crash loses this worker's
current case, not the run.

The worker never outlives the runner: an end of file on its stdin (the
runner is gone, even by SIGKILL: the kernel closes the pipe) ends it and
what it started at once, and on Linux the kernel also kills it when its
parent dies (``PR_SET_PDEATHSIG``). While it works it sends heartbeats:
the runner's ``--timeout`` counts silence, so a slow case is not hung, and a
case that stops making progress falls silent and is killed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench import backends
from bench.backends import Phase
from bench.catalog import loader
from bench.core import defaults, records
from bench.core.cases import Case
from bench.core.contract import Memory
from bench.core.device import Device, flush_bytes, nvml_index
from bench.core.records import PHASES, Record
from bench.core.settings import Settings
from bench.measure import gpu_state, memory
from bench.measure import protocol as proto
from bench.measure.equivalence import relative_error
from bench.measure.interference import CpuMonitor
from bench.measure.timing import CaseTiming, Timer, TimingConfig
from bench.stats import intervals, quality, row_stats


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for events; send everything else printed to stderr.

    Frameworks print banners and warnings; none of it may corrupt the events.
    """
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


Emit = Callable[[proto.Event], None]

# PR_SET_PDEATHSIG from <linux/prctl.h>: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def pin_threads(threads: int) -> list[int]:
    """Pin this process to ``threads`` CPUs, before any framework starts its pools.

    Every framework then has the same cores, including JAX, whose CPU thread
    pool has no public size setting.
    """
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


# Optimizer steps taken from the shared initialisation before timing; their
# losses are the training curve stored on the step row.
TRAIN_STEPS = 20


# The matmul that measures the device's float32 peak: large enough to be
# compute-bound (2 GFLOP on a CPU, 1.1 TFLOP on a GPU), short enough to time
# in a fraction of a second.
PEAK_MATMUL_N = {"cpu": 1024, "cuda": 8192}
PEAK_BUDGET_S = 0.3
# RSS readings only ever gain noise (other threads allocate too): the least
# of a few is the closest to the call's own peak.
RSS_REPEATS = 3


# How often the heartbeat thread looks for progress, as a share of the
# runner's --timeout (so a beat always arrives well within it), and bounds.
HEARTBEAT_SHARE = 0.25
HEARTBEAT_MAX_S = 5.0
HEARTBEAT_MIN_S = 0.02
# The training steps before timing tick nowhere; heartbeats go on for this
# many times the steps' expected length (steps x one gradient call).
TRAIN_GRACE = 3.0


def heartbeat_interval(timeout_s: float) -> float:
    """Seconds between the heartbeat thread's looks for progress, for the runner's ``timeout_s``."""
    return min(max(HEARTBEAT_SHARE * timeout_s, HEARTBEAT_MIN_S), HEARTBEAT_MAX_S)


class Pulse:
    """Turns the worker's progress into heartbeat events, from a thread of its own.

    The main thread counts progress in ``ticks``: every timed block (the
    worker's sync ends each one) and every stage of a case. It is a plain
    integer increment, cheap enough for the timed blocks; the thread only
    reads it. Every ``interval_s`` the thread sends one heartbeat if the count
    moved. A slow case that keeps finishing blocks is never called hung,
    however long it lasts, and a case that stops making progress (a call that
    never returns, a loop) falls silent, and the runner's --timeout ends it.

    ``expect(seconds)`` covers a stretch that has no ticks of its own but an
    expected length (the training steps): heartbeats go on until it is over.
    """

    def __init__(self, emit: Emit, interval_s: float) -> None:
        self.ticks = 0
        self._emit = emit
        self._interval_s = interval_s
        self._until = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="bench-heartbeat", daemon=True)

    def start(self) -> Pulse:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5 * self._interval_s)

    def tick(self) -> None:
        """One step of progress."""
        self.ticks += 1

    def expect(self, seconds: float) -> None:
        """Keep beating for ``seconds`` from now (0: stop doing so), ticks or not."""
        self._until = time.monotonic() + seconds if seconds > 0 else 0.0

    def _beat(self) -> None:
        seen = self.ticks
        while not self._stop.wait(self._interval_s):
            if self.ticks != seen or time.monotonic() < self._until:
                seen = self.ticks
                try:
                    self._emit(proto.Heartbeat())
                except (OSError, ValueError):  # the runner is gone: nobody to tell
                    return


class RunnerLink:
    """The worker's end of its stdin: the runner's go-aheads, and its death.

    A thread reads stdin, so that the end of file is seen at once, whatever
    the worker is doing: each line is a go-ahead; the end of file before the
    job is done means the runner is gone, and the worker then ends itself and
    everything it started (``end_now``).
    """

    def __init__(self, stdin: IO[str], on_gone: Callable[[], None] | None = None) -> None:
        self._stdin = stdin
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._on_gone = on_gone or end_now
        self.finished = False

    def start(self) -> RunnerLink:
        threading.Thread(target=self._read, name="bench-stdin", daemon=True).start()
        return self

    def go_ahead(self) -> bool:
        """Wait for the runner's go-ahead for the next case; False if it is gone."""
        return self._lines.get() is not None

    def _read(self) -> None:
        try:
            for line in self._stdin:
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        self._lines.put(None)
        if not self.finished:
            self._on_gone()


def end_now() -> None:
    """End this worker and what it started, at once: the runner is gone."""
    # The runner starts each worker in a session of its own, so the process
    # group is this worker and its children; a worker started by hand is in
    # its shell's group, which must be spared.
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    True if set. The stdin watch (``RunnerLink``) covers other systems, and a
    parent that dies with its pipe somehow left open is caught here. A parent
    that died before the call has already left this process to another one.
    """
    if not sys.platform.startswith("linux") or parent_pid <= 0:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:
        end_now()
    return True


def timing_config(settings: Settings) -> TimingConfig:
    return TimingConfig(
        budget_s=settings.budget_s,
        warmup_s=defaults.QUICK_WARMUP_S if settings.quick else defaults.WARMUP_S,
        min_rounds=defaults.MIN_ROUNDS,
        precision=settings.precision,
        max_time_s=settings.max_time_s,
    )


class Worker:
    """Measures the cases of one job and emits their records."""

    def __init__(self, job: proto.WorkerJob | Mapping[str, Any], emit: Emit, pulse: Pulse | None = None
                 ) -> None:
        self.job = job if isinstance(job, proto.WorkerJob) else proto.WorkerJob.from_dict(job)
        self.emit = emit
        self.settings = self.job.settings
        # Without a started pulse (tests, tools) the ticks are counted and nobody reads them.
        self.pulse = pulse or Pulse(emit, heartbeat_interval(self.settings.timeout_s))
        self.fw = backends.get(self.job.framework)
        self.device = Device.parse(self.job.device)
        self.native: Any = None  # the framework's own device object
        self.version = self.fw.version()
        self.load_avg = math.nan
        self.peak_flops = math.nan
        self.flush: Any = None
        self.monitor = CpuMonitor()
        self.repeat = self.job.repeat  # which process of --processes N this is

    def start(self) -> bool:
        """Configure the framework and resolve the device; False if unavailable."""
        s = self.settings
        cpus = pin_threads(s.threads)
        in_effect = self.fw.configure(s.threads, s.allow_tf32, s.seed)
        if self.device.kind not in self.fw.DEVICE_KINDS:
            self.emit(proto.Unavailable(f"{self.fw.NAME} in bench does not run on {self.device.kind}"))
            return False
        try:
            self.native, name = self.fw.resolve_device(self.device)
        except backends.DeviceUnavailable as exc:
            self.emit(proto.Unavailable(str(exc)))
            return False
        self.device = self.device.named(name)
        if s.l2 == "flush":
            self.flush = self.fw.flusher(self.native, flush_bytes(self.device))
        if not self.repeat:
            self.peak_flops = self.measure_peak_flops()
        self.emit(proto.Env(
            framework=self.fw.NAME, version=str(self.version), device=self.device.spec,
            device_name=str(self.device.name), cpus=tuple(int(c) for c in cpus), settings=dict(in_effect),
            peak_flops_per_s=float(self.peak_flops), memory_method=self.fw.MEMORY_METHOD[self.device.kind],
        ))
        return True

    def gpu_snapshot(self) -> dict[str, Any]:
        """NVML clocks, power, temperature and throttle counters of the GPU ({} on a CPU)."""
        return gpu_state.snapshot(nvml_index(self.device)) if self.device.is_gpu else {}

    def sync(self, out: Any) -> None:
        self.fw.sync(out, self.native)
        # Every timed block ends here: progress for the heartbeat (an integer
        # increment, not a method call, inside the timed block).
        self.pulse.ticks += 1

    def measure_peak_flops(self) -> float:
        """This framework's float32 n x n matmul rate on the device (TF32 as configured)."""
        n = PEAK_MATMUL_N[self.device.kind]
        config = TimingConfig(budget_s=PEAK_BUDGET_S, warmup_s=0.05, min_rounds=3)
        try:
            run = self.fw.matmul(self.native, n)
            t = Timer(self.sync, config).measure([Phase("matmul", run)])["matmul"].median_s
        except Exception as exc:  # a failed peak must not stop the run; the rows say NaN
            print(f"bench: peak FLOP/s not measured: {type(exc).__name__}: {exc}", file=sys.stderr)
            return math.nan
        return 2.0 * n**3 / t if t > 0 else math.nan

    def record(self, case: Case, phase: str, status: str, **kw: Any) -> Record:
        """One row of ``case`` from this worker (``records.make``), with the worker's own columns."""
        origin = records.Origin(self.job.run_id, self.job.machine, self.fw.NAME, self.version, self.job.mode,
                                self.device.spec, self.device.name)
        kw.setdefault("load_avg", self.load_avg)
        return records.make(origin, case, phase, status, self.settings, peak_flops_per_s=self.peak_flops,
                            **kw)

    def run_case(self, suite: loader.Suite, case: Case) -> list[Record]:
        """Check equivalence, then time every phase; records for all phases."""
        mod, s, pulse = suite.module, self.settings, self.pulse
        prob = mod.problem(case.as_dict(), s.seed)
        flops = mod.flops(case.as_dict())
        pulse.tick()
        impl = self.fw.implement(
            suite.loss(self.fw.NAME), prob, self.native, self.job.mode, s.learning_rate,
            suite.optimizer(self.fw.NAME),
        )
        pulse.tick()
        if self.repeat:
            # A further process of --processes N only adds rounds: the first
            # one checked equivalence and measured what does not vary.
            return self._time(suite, case, prob, flops, impl, {}, (), measure_memory=False)
        ref_loss, ref_grads = mod.reference(prob)
        pulse.tick()
        started = time.perf_counter()
        loss, grads = impl.loss_and_grads()
        gradient_s = time.perf_counter() - started
        pulse.tick()
        shapes = [tuple(np.shape(g)) for g in grads]
        expected = [tuple(np.shape(g)) for g in ref_grads]
        if shapes != expected:
            reason = f"gradient shapes {shapes} differ from the reference's {expected}; not timed"
            return [self.record(case, p, "failed", reason=reason) for p in PHASES]
        err = relative_error(loss, grads, ref_loss, ref_grads)
        tol = suite.tolerance
        if s.allow_tf32 and self.device.is_gpu:
            tol = max(tol, loader.TF32_TOLERANCE)
        equiv = {"equiv_error": err, "equiv_tol": tol}
        if not err <= tol:
            reason = (
                f"loss and gradients differ from the float64 reference by {err:.2e} "
                f"(tolerance {tol:.0e}); not timed"
            )
            return [self.record(case, p, "failed", reason=reason, **equiv) for p in PHASES]

        # The steps tick nowhere: beat through their expected length (a step
        # is about one gradient call; that one may have held a compilation).
        pulse.expect(TRAIN_GRACE * TRAIN_STEPS * gradient_s)
        try:
            curve = tuple(impl.train(TRAIN_STEPS))
        finally:
            pulse.expect(0)
        pulse.tick()
        return self._time(suite, case, prob, flops, impl, equiv, curve, measure_memory=True)

    def _time(self, suite: loader.Suite, case: Case, prob: Any, flops: Any,
              impl: backends.Implementation, equiv: dict[str, float], curve: tuple[float, ...],
              measure_memory: bool) -> list[Record]:
        """Time every phase of a checked case; its records, quality assessed."""
        s = self.settings
        timing = Timer(self.sync, timing_config(s), flush=self.flush, monitor=self.monitor.read).measure(
            impl.phases, impl.traces)
        if timing.recompiles:
            reason = (
                f"{timing.recompiles} traces or compilations happened inside the timed rounds "
                "(changing shapes or guards?): the samples hold compile time; not reported"
            )
            return [self.record(case, p, "error", reason=reason, **equiv) for p in PHASES]
        mem = self._memory(suite, case, impl) if measure_memory else {p: {} for p in PHASES}
        update_flops = suite.update_flops * sum(p.size for p in prob.params)
        phase_flops = {
            "forward": flops.forward,
            "gradient": flops.gradient,
            "backward": flops.gradient - flops.forward,
            "backward_split": flops.gradient - flops.forward,
            "step": flops.gradient + update_flops,
        }
        records = []
        noise = self._interference(timing)
        for phase in PHASES:
            common = {
                **noise,
                **equiv,
                "flops": float(phase_flops[phase]),
                "theory_ratio": phase_flops[phase] / flops.forward,
                **mem[phase],
            }
            if phase in impl.skipped:
                records.append(self.record(case, phase, "skipped", reason=impl.skipped[phase]))
                continue
            measured = self._derived(timing) if phase == "backward" else self._measured(timing, phase)
            # A derived backward time can come out <= 0 when noise beats it.
            t = measured["median_s"]
            measured["flops_per_s"] = phase_flops[phase] / t if t > 0 else math.nan
            extra = {"loss_curve": curve} if phase == "step" else {}
            records.append(self.record(case, phase, "ok", **measured, **common, **extra))
        return quality.assess(records)

    def _peak(self, impl: backends.Implementation, phase: Phase) -> float:
        """Extra bytes at the peak of one call: the framework's statistics, else the RSS."""
        if impl.peak_bytes is not None:
            return impl.peak_bytes(phase)
        return min(self._rss_peak(phase) for _ in range(RSS_REPEATS))

    def _rss_peak(self, phase: Phase) -> float:
        """One reading of the RSS at the peak of one call; its state is freed on return."""
        # The preparation (a recorded forward pass) is in the RSS before the
        # call, so only the phase's own allocations count.
        state = phase.prepare() if phase.prepare is not None else None
        self.sync(state)
        return memory.rss_peak(lambda: self.sync(phase.run(state)))

    def _memory(self, suite: loader.Suite, case: Case, impl: backends.Implementation
                ) -> dict[str, dict[str, Any]]:
        """Memory columns per phase: saved bytes, peak bytes, M, and the suite's theory.

        Memory is measured after the timing: a probe or a suite's ``memory()``
        that fails leaves its columns NaN, says why in ``memory_method``, and
        never costs the case its times.
        """
        method = self.fw.MEMORY_METHOD[self.device.kind]
        problems: list[str] = []

        def attempt(what: str, fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:
                traceback.print_exc()
                problems.append(f"{what} failed: {type(exc).__name__}: {exc}".splitlines()[0][:200])
                return None
            finally:
                self.pulse.tick()

        theory = attempt("the suite's memory()", suite.memory, case.as_dict())
        if theory is not None and not isinstance(theory, Memory):
            problems.append(f"the suite's memory() returned {type(theory).__name__}, not bench.Memory")
            theory = None
        saved = attempt("saved bytes", impl.saved_bytes)
        peaks = {p.name: attempt(f"{p.name} peak", self._peak, impl, p) for p in impl.phases}
        nan = math.nan
        base = peaks.get("forward")
        base = nan if base is None else base
        out: dict[str, dict[str, Any]] = {}
        for phase in PHASES:
            peak = peaks.get(phase)
            peak = nan if peak is None else peak
            row: dict[str, Any] = {
                "saved_bytes": nan if saved is None else saved,
                "peak_bytes": peak,
                "memory_ratio": peak / base if base > 0 else nan,
                "memory_method": "; ".join([method, *problems]),
            }
            if theory is not None:
                row["theory_saved_bytes"] = float(theory.saved)
                want = {"forward": theory.forward, "gradient": theory.gradient}.get(phase)
                if want is not None:
                    row["theory_peak_bytes"] = float(want)
                    row["theory_memory_ratio"] = want / theory.forward if theory.forward else nan
            out[phase] = row
        return out

    @staticmethod
    def _interference(timing: CaseTiming) -> dict[str, float]:
        """Other processes' CPU (over all rounds, and its peak over 1 s stretches) and steal time."""
        steal = [x for x in timing.steal if x == x]
        return {
            "interference": timing.interference_share(), "interference_max": timing.interference_peak(),
            "steal": intervals.median(steal),
        }

    @staticmethod
    def _measured(timing: CaseTiming, phase: str) -> dict[str, Any]:
        t = timing[phase]
        return {
            **row_stats.measured(t.samples_s, timing["forward"].samples_s),
            "calls_per_block": t.calls_per_block, "first_call_s": t.first_call_s,
            "drift": t.drift, "recalibrations": t.recalibrations,
        }

    @staticmethod
    def _derived(timing: CaseTiming) -> dict[str, Any]:
        """backward = gradient - forward, round by round."""
        return row_stats.derived_backward(timing["gradient"].samples_s, timing["forward"].samples_s)

    def run(self, next_case: Callable[[], bool] = lambda: True) -> None:
        """Measure every case of the job; ``next_case()`` is asked before each but the first.

        It returns False when the runner is gone: the worker then stops.
        """
        if not self.start():
            return
        first = True
        for entry in self.job.suites:
            suite = loader.load_file(Path(entry.path))
            for params in entry.cases:
                if not first and not next_case():
                    return
                first = False
                case = Case.of(suite.name, dict(params))
                self.load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
                self.emit(proto.CaseStarted(suite.name, case.id))
                before = self.gpu_snapshot()
                try:
                    records = self.run_case(suite, case)
                except Exception as exc:  # a case that raises must not end the others
                    traceback.print_exc()
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                    records = [self.record(case, p, "error", reason=reason) for p in PHASES]
                if before:
                    after = self.gpu_snapshot()
                    states = gpu_state.summary(before, after)
                    throttled = gpu_state.throttled(before, after)
                    records = [dataclasses.replace(r, gpu_state=states, throttled=throttled) for r in records]
                for r in records:
                    self.emit(proto.RecordRow(r))
                self.emit(proto.CaseFinished(suite.name, case.id))


def probe(job: proto.ProbeJob, emit: Emit) -> None:
    """Report version, usable devices and settings in effect (for ``bench env``)."""
    fw = backends.get(job.framework)
    cpus = pin_threads(job.threads)
    settings = fw.configure(job.threads, False, 0)
    emit(proto.ProbeResult(version=str(fw.version()), devices=tuple(fw.devices()),
                           cpus=tuple(int(c) for c in cpus), settings=dict(settings)))


def serve(job: proto.WorkerJob | proto.ProbeJob, emit: Emit, go_ahead: Callable[[], bool] = lambda: True
          ) -> None:
    """Do one job, its events through ``emit``, all but the closing ``done``.

    ``go_ahead()`` waits for the runner's go-ahead before each case but the
    first (False: the runner is gone, stop).
    """
    if isinstance(job, proto.ProbeJob):
        probe(job, emit)
        return
    pulse = Pulse(emit, heartbeat_interval(job.settings.timeout_s)).start()
    try:
        Worker(job, emit, pulse).run(next_case=go_ahead)
    finally:
        pulse.stop()


def main() -> int:
    stream = _protocol_stream()
    lock = threading.Lock()  # the heartbeat thread writes too: one whole line at a time

    def emit(event: proto.Event) -> None:
        line = proto.encode(event)
        with lock:
            stream.write(line)

    try:
        job = proto.decode_job(sys.stdin.readline())
    except proto.ProtocolError as exc:
        print(f"bench worker: {exc}", file=sys.stderr)
        return 2
    if isinstance(job, proto.WorkerJob):
        die_with_parent(job.parent_pid)
        link = RunnerLink(sys.stdin).start()
        serve(job, emit, link.go_ahead)
        link.finished = True  # the runner closes stdin once it has read "done": no reason to end now
    else:
        serve(job, emit)
    emit(proto.Done())
    stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

