"""The timing engine: first call apart, warm-up, blocked autorange, paired rounds.

How a case is measured (the method follows ``torch.utils.benchmark``'s
``blocked_autorange``, extended to several phases timed against each other):

1. **First call.** Each phase is called once on its own and timed, sync
   included. This is where tracing and compilation happen (``jax.jit``,
   ``tf.function``), so it is reported as ``first_call_s`` and never mixed into
   the steady state.
2. **Overhead.** An empty block (clock read plus device sync, no call) is timed
   a few times; its median is the fixed cost every block pays.
3. **Block size.** Each phase runs in blocks of ``n`` back-to-back calls with
   one sync at the end, never one per call: a sync per call would time the
   host-device round trip instead of the work. ``n`` grows until a block lasts
   at least ``max(min_block_s, overhead_factor * overhead, budget share)``,
   which makes the overhead negligible (below 0.1 % by default). Growing the
   block doubles as warm-up, and a short timed warm-up follows.
4. **Paired, interleaved rounds.** Each round times one block of every phase,
   the order rotating from round to round. Round ``i`` of the forward pass and
   round ``i`` of the gradient were taken seconds apart, so a machine that
   slows down (another job, thermal throttling) slows both, and the paired
   ratio ``T(gradient) / T(forward)`` stays honest where two separate timings
   would not. Rounds go on until the budget is spent (and at least
   ``min_rounds``).

Drift: a phase whose per-call time in a round is more than ``DRIFT``
times its calibrated time is calibrated again,
so a machine that slows down mid-case (another job starts) does not leave
blocks far longer than the budget planned. Interference: with a ``monitor``
(``bench.measure.interference``), each round also records the CPU that other
processes and the hypervisor took during it.

Cache policy: with a ``flush`` callable (``--l2 flush``), every block starts
after a buffer larger than the last-level cache was overwritten, as
``triton.testing.do_bench`` does before each call; the flush is untimed and
the same for every phase, so R compares like with like.

The clock and the sync are injected, so the engine is tested with a fake clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.backends import Phase
from bench.core import defaults
from bench.measure.interference import share as interference_share
from bench.stats import intervals

Clock = Callable[[], float]
Sync = Callable[[Any], None]
# Per-call time more than this factor away from the calibration: calibrate again.
DRIFT = 2.0




@dataclass(frozen=True)
class TimingConfig:
    """How long and how finely to measure one case."""

    budget_s: float = defaults.BUDGET_S
    warmup_s: float = defaults.WARMUP_S
    min_rounds: int = defaults.MIN_ROUNDS
    max_rounds: int = 1000
    target_rounds: int = 25
    min_block_s: float = 1e-3
    overhead_factor: float = 1000.0
    max_calls_per_block: int = 1_000_000
    # Adaptive precision: after the budget, keep adding rounds until R's 95 %
    # CI (or the only phase's median CI) has at most this relative half-width,
    # or the rounds have lasted max_time_s.
    precision: float | None = None
    max_time_s: float = defaults.MAX_TIME_S

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise ValueError("budget_s must be positive")
        if self.precision is not None and not self.precision > 0:
            raise ValueError("precision must be positive")
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError("need 1 <= min_rounds <= max_rounds")


@dataclass(frozen=True)
class PhaseTiming:
    """Steady-state samples of one phase: seconds per call, one sample per round."""

    name: str
    first_call_s: float
    calls_per_block: int
    samples_s: tuple[float, ...]
    # Per-call time of the first calibration's last block, and how often the
    # phase had to be calibrated again because the rounds drifted from it.
    calibrated_s: float = math.nan
    recalibrations: int = 0

    @property
    def median_s(self) -> float:
        return intervals.median(self.samples_s)

    @property
    def iqr_s(self) -> float:
        return intervals.iqr(self.samples_s)

    @property
    def min_s(self) -> float:
        return min(self.samples_s) if self.samples_s else math.nan

    @property
    def drift(self) -> float:
        """Median per-call time over the calibrated one: 1 when the machine stayed the same."""
        return self.median_s / self.calibrated_s if self.calibrated_s > 0 else math.nan


@dataclass(frozen=True)
class CaseTiming:
    """All phases of one case, measured in the same interleaved rounds."""

    phases: tuple[PhaseTiming, ...]
    overhead_s: float
    # Traces or compilations that happened during the timed rounds: anything
    # but 0 means compile time leaked into the steady-state samples.
    recompiles: int = 0
    # Per round: CPU taken by other processes and stolen by the hypervisor,
    # in fractions of one CPU (empty without a monitor).
    interference: tuple[float, ...] = ()
    steal: tuple[float, ...] = ()
    round_s: tuple[float, ...] = ()  # wall time of each round (with a monitor)
    # With a precision asked: the relative half-width reached (NaN otherwise).
    precision: float = math.nan

    def interference_share(self) -> float:
        """The CPU other processes took over all rounds together, as a fraction of one CPU.

        The total, not the median over rounds: the kernel counts in 10 ms
        ticks, so a round shorter than a tick reads 0 or a whole tick, and the
        median of such rounds can read 0 beside a busy loop. A brief burst
        still weighs only by its length (and ``interference_peak`` sees it).
        """
        other = wall = 0.0
        for share, seconds in zip(self.interference, self.round_s, strict=True):
            if share == share:
                other, wall = other + share * seconds, wall + seconds
        return other / wall if wall > 0 else math.nan

    def interference_peak(self, window_s: float = 1.0) -> float:
        """The most CPU other processes took in any stretch of consecutive rounds lasting ``window_s``.

        The kernel counts CPU time in 10 ms ticks: one tick in a 20 ms round
        reads as half a CPU. Windows long enough to hold many ticks keep that
        quantization out of the peak, and a second-long window ignores bursts
        that touch a round or two: the median over rounds is robust to those
        (a shell command beside a quiet run took a CPU for a quarter second).
        """
        best, other, wall = math.nan, 0.0, 0.0
        for share, seconds in zip(self.interference, self.round_s, strict=True):
            if share != share:
                continue
            other, wall = other + share * seconds, wall + seconds
            if wall >= window_s:
                best = max(best, other / wall) if best == best else other / wall
                other, wall = 0.0, 0.0
        if best != best and wall > 0:  # every round together lasted less than a window
            best = other / wall
        return best

    def __getitem__(self, name: str) -> PhaseTiming:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def rounds(self) -> int:
        return len(self.phases[0].samples_s) if self.phases else 0

    def ratio(self, num: str, den: str = "forward") -> intervals.Interval:
        """Median of per-round ratios, e.g. R = ratio("gradient", "forward")."""
        return intervals.paired_ratio(self[num].samples_s, self[den].samples_s)

    def difference(self, num: str, den: str = "forward") -> intervals.Interval:
        """Median of per-round differences, e.g. backward = gradient - forward."""
        return intervals.paired_difference(self[num].samples_s, self[den].samples_s)


class Timer:
    """Times phases with an injected clock and device sync."""

    def __init__(
        self,
        sync: Sync,
        config: TimingConfig | None = None,
        clock: Clock = time.perf_counter,
        flush: Callable[[], Any] | None = None,
        monitor: Callable[[], Any] | None = None,
    ) -> None:
        self.sync = sync
        self.config = config or TimingConfig()
        self.clock = clock
        self.flush = flush
        self.monitor = monitor

    def time_block(self, phase: Phase, number: int, settle: bool = True) -> float:
        """Seconds for ``number`` back-to-back calls and one sync at the end.

        ``settle``: one untimed call first (the first call of the phase is
        timed without it, compile time and all).
        """
        state = phase.prepare() if phase.prepare is not None else None
        self.sync(state)  # the untimed preparation must not leak into the block
        if number and settle:
            # One untimed call first: the first call after another phase's
            # block pays a one-off switching cost (measured for JAX at 0.2 ms,
            # +4 % on a 5 ms block) that the empty-block overhead does not hold.
            self.sync(phase.run(state))
        if self.flush is not None and number:
            self.sync(self.flush())
        out = None
        start = self.clock()
        for _ in range(number):
            out = phase.run(state)
        self.sync(out)
        return self.clock() - start

    def first_call(self, phase: Phase) -> float:
        """Seconds for the very first call: tracing and compilation included."""
        return self.time_block(phase, 1, settle=False)

    def overhead(self, repeats: int = 7) -> float:
        """Median cost of an empty block: clock reads plus one sync."""
        empty = Phase("overhead", run=lambda _: None)
        return intervals.median([self.time_block(empty, 0) for _ in range(repeats)])

    def calibrate(self, phase: Phase, target_s: float) -> int:
        """A block size (calls) whose block lasts at least ``target_s``.

        It aims at 1.05 x the target and at least doubles per try, so the
        block lasts between the target and about twice the target.
        """
        return self._calibrate(phase, target_s)[0]

    def _calibrate(self, phase: Phase, target_s: float) -> tuple[int, float]:
        """The block size, and the per-call time its last block measured."""
        cap = self.config.max_calls_per_block
        number = 1
        while True:
            elapsed = self.time_block(phase, number)
            per_call = max(elapsed / number, 1e-12)
            if elapsed >= target_s or number >= cap:
                return number, elapsed / number
            # Aim straight at the target, but at most 100x per step: the
            # first measurements are the noisiest.
            wanted = math.ceil(1.05 * target_s / per_call)
            number = min(cap, max(2 * number, min(wanted, 100 * number)))

    def warm_up(self, phase: Phase, number: int) -> None:
        """Run blocks until ``warmup_s`` has passed (caches, allocators, clocks)."""
        spent, blocks = 0.0, 0
        # The block count bounds the loop should a clock read zero-length blocks.
        while spent < self.config.warmup_s and blocks < 1000:
            spent += self.time_block(phase, number)
            blocks += 1

    def measure(self, phases: Sequence[Phase], traces: Callable[[], int] | None = None) -> CaseTiming:
        """First call, calibration, warm-up, then paired interleaved rounds.

        ``traces()`` (optional) counts the framework's traces and compilations;
        the count is compared before and after the rounds.
        """
        cfg = self.config
        if not phases:
            return CaseTiming((), math.nan)
        first = {p.name: self.first_call(p) for p in phases}
        overhead = self.overhead()
        target = max(
            cfg.min_block_s,
            cfg.overhead_factor * overhead,
            cfg.budget_s / (len(phases) * cfg.target_rounds),
        )
        rounds = _Rounds({p.name: [] for p in phases}, {}, {}, dict.fromkeys((p.name for p in phases), 0))
        for p in phases:
            rounds.numbers[p.name], rounds.calibrated[p.name] = self._calibrate(p, target)
            self.warm_up(p, rounds.numbers[p.name])
        # Drift is judged against the first calibration: a recalibration
        # resizes the blocks but must not hide that the machine slowed down.
        first_calibrated = dict(rounds.calibrated)
        traced_before = traces() if traces else 0
        stop = _StopRule(cfg, self.clock)
        while stop.more(rounds.samples):
            self._round(phases, rounds, stop)
            self._recalibrate_drifted(phases, rounds, target)
        return CaseTiming(
            tuple(
                PhaseTiming(p.name, first[p.name], rounds.numbers[p.name], tuple(rounds.samples[p.name]),
                            first_calibrated[p.name], rounds.recalibrations[p.name])
                for p in phases
            ),
            overhead,
            (traces() - traced_before) if traces else 0,
            tuple(rounds.interference),
            tuple(rounds.steal),
            tuple(rounds.round_s),
            relative_half_width(rounds.samples) if cfg.precision is not None else math.nan,
        )

    def _round(self, phases: Sequence[Phase], rounds: _Rounds, stop: _StopRule) -> None:
        """One block of every phase, the order rotating from round to round, and the CPU others took."""
        k = len(rounds.samples[phases[0].name]) % len(phases)
        cpu_before, started = (self.monitor(), self.clock()) if self.monitor else (None, 0.0)
        for p in (*phases[k:], *phases[:k]):
            elapsed = self.time_block(p, rounds.numbers[p.name])
            rounds.samples[p.name].append(elapsed / rounds.numbers[p.name])
            stop.spent += elapsed
        if self.monitor is not None:
            wall = self.clock() - started
            other, stolen = interference_share(cpu_before, self.monitor(), wall)
            rounds.interference.append(other)
            rounds.steal.append(stolen)
            rounds.round_s.append(wall)

    def _recalibrate_drifted(self, phases: Sequence[Phase], rounds: _Rounds, target: float) -> None:
        for p in phases:
            # Only a slowdown: calls that got faster after the calibration
            # (it ran while caches and allocators were still cold) leave
            # blocks shorter, still far above the overhead.
            if rounds.samples[p.name][-1] > DRIFT * rounds.calibrated[p.name]:
                rounds.numbers[p.name], rounds.calibrated[p.name] = self._calibrate(p, target)
                rounds.recalibrations[p.name] += 1


@dataclass
class _Rounds:
    """The rounds of one case so far: per phase its samples, block size, calibrated per-call time
    and recalibrations; per round the CPU other processes and the hypervisor took, and its length."""

    samples: dict[str, list[float]]
    numbers: dict[str, int]
    calibrated: dict[str, float]
    recalibrations: dict[str, int]
    interference: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)


class _StopRule:
    """When the rounds end: budget and minimum rounds first, then --precision up to its time cap."""

    def __init__(self, config: TimingConfig, clock: Clock) -> None:
        self.cfg, self.clock = config, clock
        self.spent = 0.0  # seconds of timed blocks so far
        self.started = clock() if config.precision is not None else 0.0
        self.next_check = 0

    def more(self, samples: dict[str, list[float]]) -> bool:
        cfg = self.cfg
        rounds = len(next(iter(samples.values())))
        if rounds >= cfg.max_rounds:
            return False
        if rounds < cfg.min_rounds or self.spent < cfg.budget_s:
            return True
        if cfg.precision is None or self.clock() - self.started >= cfg.max_time_s:
            return False
        if rounds < self.next_check:
            return True
        # A bootstrap per round would cost more than the rounds: check every
        # tenth of the rounds so far.
        self.next_check = rounds + max(2, rounds // 10)
        return relative_half_width(samples) > cfg.precision


def relative_half_width(samples: dict[str, list[float]]) -> float:
    """Half-width of R's 95 % CI over R (of the only phase's median CI, with one phase)."""
    if "gradient" in samples and "forward" in samples:
        ci = intervals.paired_ratio(samples["gradient"], samples["forward"])
    else:
        ci = intervals.median_ci(next(iter(samples.values())))
    return (ci.high - ci.low) / 2 / ci.value if ci.value > 0 and ci.low == ci.low else math.inf
