"""The worker: one framework on one device, in its own process.

The runner starts ``python -m bench.worker``, writes a job (JSON) on its
stdin and reads events (JSON lines) from its stdout. Only this process
imports the framework, so TensorFlow and JAX never share a process or fight
over GPU memory, and a crash loses this worker's current case, not the run.

Events: ``env`` (framework, device and settings in effect), ``unavailable``
(the device cannot be used here, with the reason), ``case`` (a case starts),
``record`` (one results row), ``done``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench import discovery, frameworks, stats
from bench.equivalence import relative_error
from bench.spec import PHASES, Case, Record, Settings, params_json
from bench.timing import CaseTiming, Timer, TimingConfig


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for events; send everything else printed to stderr.

    Frameworks print banners and warnings; none of it may corrupt the events.
    """
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


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


def timing_config(settings: Settings) -> TimingConfig:
    return TimingConfig(
        budget_s=settings.budget_s,
        warmup_s=0.02 if settings.quick else 0.1,
        min_rounds=5,
    )


class Worker:
    """Measures the cases of one job and emits their records."""

    def __init__(self, job: dict[str, Any], emit) -> None:
        self.job = job
        self.emit = emit
        self.settings = Settings(**job["settings"])
        self.fw = frameworks.get(job["framework"])
        self.device: Any = None
        self.device_name = ""
        self.version = self.fw.version()
        self.load_avg = math.nan

    def start(self) -> bool:
        """Configure the framework and resolve the device; False if unavailable."""
        s = self.settings
        cpus = pin_threads(s.threads)
        in_effect = self.fw.configure(s.threads, s.allow_tf32, s.seed)
        try:
            self.device, self.device_name = self.fw.resolve_device(self.job["device"])
        except frameworks.DeviceUnavailable as exc:
            self.emit({"event": "unavailable", "reason": str(exc)})
            return False
        self.emit(
            {
                "event": "env",
                "framework": self.fw.NAME,
                "version": self.version,
                "device": self.job["device"],
                "device_name": self.device_name,
                "cpus": cpus,
                "settings": in_effect,
            }
        )
        return True

    def record(self, case: Case, phase: str, status: str, **kw: Any) -> Record:
        s = self.settings
        kw.setdefault("load_avg", self.load_avg)
        return Record(
            run_id=self.job["run_id"],
            machine=self.job["machine"],
            suite=case.suite,
            case=case.id,
            params=params_json(case),
            framework=self.fw.NAME,
            framework_version=self.version,
            mode=self.job["mode"],
            device=self.job["device"],
            device_name=self.device_name,
            phase=phase,
            status=status,
            threads=s.threads,
            allow_tf32=s.allow_tf32,
            dtype=s.dtype,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **kw,
        )

    def run_case(self, suite: discovery.Suite, case: Case) -> list[Record]:
        """Check equivalence, then time every phase; records for all phases."""
        mod, s = suite.module, self.settings
        prob = mod.problem(case.as_dict(), s.seed)
        ref_loss, ref_grads = mod.reference(prob)
        flops = mod.flops(case.as_dict())
        impl = self.fw.implement(
            suite.loss(self.fw.NAME), prob, self.device, self.job["mode"], s.learning_rate,
            suite.optimizer(self.fw.NAME),
        )
        loss, grads = impl.loss_and_grads()
        shapes = [tuple(np.shape(g)) for g in grads]
        expected = [tuple(np.shape(g)) for g in ref_grads]
        if shapes != expected:
            reason = f"gradient shapes {shapes} differ from the reference's {expected}; not timed"
            return [self.record(case, p, "failed", reason=reason) for p in PHASES]
        err = relative_error(loss, grads, ref_loss, ref_grads)
        tol = suite.tolerance
        if s.allow_tf32 and self.job["device"] != "cpu":
            tol = max(tol, discovery.TF32_TOLERANCE)
        equiv = {"equiv_error": err, "equiv_tol": tol}
        if not err <= tol:
            reason = (
                f"loss and gradients differ from the float64 reference by {err:.2e} "
                f"(tolerance {tol:.0e}); not timed"
            )
            return [self.record(case, p, "failed", reason=reason, **equiv) for p in PHASES]

        curve = tuple(impl.train(TRAIN_STEPS))
        sync = self.fw.sync
        device = self.device
        timing = Timer(lambda out: sync(out, device), timing_config(s)).measure(
            impl.phases, impl.traces
        )
        if timing.recompiles:
            reason = (
                f"{timing.recompiles} traces or compilations happened inside the timed rounds "
                "(changing shapes or guards?): the samples hold compile time; not reported"
            )
            return [self.record(case, p, "error", reason=reason, **equiv) for p in PHASES]
        update_flops = suite.update_flops * sum(p.size for p in prob.params)
        phase_flops = {
            "forward": flops.forward,
            "gradient": flops.gradient,
            "backward": flops.gradient - flops.forward,
            "backward_split": flops.gradient - flops.forward,
            "step": flops.gradient + update_flops,
        }
        records = []
        for phase in PHASES:
            common = {
                **equiv,
                "flops": float(phase_flops[phase]),
                "theory_ratio": phase_flops[phase] / flops.forward,
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
        return records

    @staticmethod
    def _measured(timing: CaseTiming, phase: str) -> dict[str, Any]:
        t = timing[phase]
        ci = t.median_ci
        r = timing.ratio(phase, "forward")
        return {
            "median_s": t.median_s, "iqr_s": t.iqr_s, "min_s": t.min_s,
            "ci_low_s": ci.low, "ci_high_s": ci.high,
            "rounds": len(t.samples_s), "calls_per_block": t.calls_per_block,
            "samples_s": t.samples_s, "first_call_s": t.first_call_s,
            "ratio": r.value, "ratio_ci_low": r.low, "ratio_ci_high": r.high,
        }

    @staticmethod
    def _derived(timing: CaseTiming) -> dict[str, Any]:
        """backward = gradient - forward, round by round."""
        g, f = timing["gradient"].samples_s, timing["forward"].samples_s
        diff = tuple(a - b for a, b in zip(g, f, strict=True))
        d = timing.difference("gradient", "forward")
        r = timing.ratio("gradient", "forward")

        return {
            "median_s": d.value, "iqr_s": stats.iqr(diff), "min_s": min(diff),
            "ci_low_s": d.low, "ci_high_s": d.high, "rounds": len(diff),
            "samples_s": diff,
            "ratio": r.value - 1, "ratio_ci_low": r.low - 1, "ratio_ci_high": r.high - 1,
        }

    def run(self) -> None:
        if not self.start():
            return
        for entry in self.job["suites"]:
            suite = discovery.load_file(Path(entry["path"]))
            for params in entry["cases"]:
                case = Case.of(suite.name, params)
                self.load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
                self.emit({"event": "case", "suite": suite.name, "case": case.id})
                try:
                    records = self.run_case(suite, case)
                except Exception as exc:  # a case that raises must not end the others
                    traceback.print_exc()
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                    records = [self.record(case, p, "error", reason=reason) for p in PHASES]
                for r in records:
                    self.emit({"event": "record", "record": r.to_dict()})


def probe(job: dict[str, Any], emit) -> None:
    """Report version, usable devices and settings in effect (for ``bench env``)."""
    fw = frameworks.get(job["framework"])
    cpus = pin_threads(job["threads"])
    settings = fw.configure(job["threads"], False, 0)
    emit({"event": "probe", "version": fw.version(), "devices": fw.devices(),
          "cpus": cpus, "settings": settings})


def main() -> int:
    stream = _protocol_stream()

    def emit(event: dict[str, Any]) -> None:
        stream.write(json.dumps(event, allow_nan=True) + "\n")

    job = json.loads(sys.stdin.read())
    if job.get("probe"):
        probe(job, emit)
    else:
        Worker(job, emit).run()
    emit({"event": "done"})
    stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

