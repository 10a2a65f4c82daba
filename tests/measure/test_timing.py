"""The timing engine, driven by a fake clock that only moves when fake work runs.

Every cost is a multiple of a power of two (``U`` = 2**-10 s), so sums and
differences of clock readings are exact in binary floating point and the
engine's per-call samples can be compared with ``==``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.backends import Phase
from bench.measure.timing import CaseTiming, Timer, TimingConfig

U = 2.0**-10  # one unit of fake work, about 1 ms


class FakeClock:
    """A clock that stands still unless something advances it; logs every reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[tuple] = []

    def __call__(self) -> float:
        self.log.append(("clock",))
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSync:
    """Counts its calls; each one costs ``cost`` seconds of fake time."""

    def __init__(self, clock: FakeClock, cost: float = 0.0) -> None:
        self.clock = clock
        self.cost = cost
        self.calls = 0

    def __call__(self, value) -> None:
        self.calls += 1
        self.clock.log.append(("sync", value))
        self.clock.advance(self.cost)


class FakeWork:
    """A phase's timed call: ``cost`` seconds per call, ``first_extra`` more on the very first.

    It refuses to run more than ``max_calls`` times, so an engine that loops
    forever fails the test quickly instead of hanging it.
    """

    def __init__(
        self, clock: FakeClock, name: str, cost: float, first_extra: float = 0.0, max_calls: int = 200_000
    ) -> None:
        self.clock = clock
        self.name = name
        self.cost = cost
        self.first_extra = first_extra
        self.max_calls = max_calls
        self.calls = 0

    def __call__(self, state):
        if self.calls >= self.max_calls:
            raise RuntimeError(f"{self.name} called more than {self.max_calls} times")
        extra = self.first_extra if self.calls == 0 else 0.0
        self.calls += 1
        self.clock.advance(self.cost + extra)
        self.clock.log.append(("run", self.name, state))
        return ("out", self.name, self.calls)


def make(costs: dict[str, float], sync_cost: float = 0.0, first_extra: float = 0.0, **config):
    """A timer on a fake clock, and one fake phase per (name, cost)."""
    clock = FakeClock()
    sync = FakeSync(clock, sync_cost)
    works = {name: FakeWork(clock, name, cost, first_extra) for name, cost in costs.items()}
    phases = [Phase(name, run=work) for name, work in works.items()]
    timer = Timer(sync, TimingConfig(**config), clock=clock)
    return clock, sync, works, phases, timer


def timed_regions(log: list[tuple]) -> list[list[tuple]]:
    """The events between each start and end clock reading (clock readings come in pairs)."""
    reads = [i for i, event in enumerate(log) if event[0] == "clock"]
    assert len(reads) % 2 == 0, "every timed block reads the clock twice"
    return [log[a + 1 : b] for a, b in itertools.pairwise(reads)][::2]


def round_times(case: CaseTiming) -> list[float]:
    """Fake seconds spent by each round: sum over phases of sample * calls per block."""
    return [
        sum(p.samples_s[r] * p.calls_per_block for p in case.phases) for r in range(case.rounds)
    ]


FAST = {"budget_s": 0.25, "warmup_s": 2.0**-6, "min_block_s": 2.0**-8}


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [0.0, -1.0])
def test_config_rejects_non_positive_budget(budget):
    with pytest.raises(ValueError, match="budget"):
        TimingConfig(budget_s=budget)


@pytest.mark.parametrize(("lo", "hi"), [(0, 10), (11, 10)])
def test_config_rejects_bad_round_bounds(lo, hi):
    with pytest.raises(ValueError, match="min_rounds"):
        TimingConfig(min_rounds=lo, max_rounds=hi)


# --- per-call samples ------------------------------------------------------------------------


def test_samples_are_exactly_the_per_call_cost_without_sync_cost():
    _, _, _, phases, timer = make({"forward": 1 * U, "gradient": 3 * U}, **FAST)
    case = timer.measure(phases)
    assert case.overhead_s == 0.0
    assert case.rounds >= 5
    assert set(case["forward"].samples_s) == {1 * U}
    assert set(case["gradient"].samples_s) == {3 * U}
    assert case["forward"].median_s == 1 * U
    assert case["gradient"].min_s == 3 * U
    assert case["gradient"].iqr_s == 0.0


def test_sync_overhead_is_measured_and_made_negligible_by_the_block_size():
    """With a sync that costs S, the engine promises blocks >= overhead_factor * overhead.

    It does not subtract the overhead, so a sample is cost + S/n; the block size
    makes S/n at most 1/(factor - 1) of the cost. With one call per block the
    error would be S/cost = 6 %.
    """
    sync_cost = 2.0**-14
    factor = 1000.0
    cost = 1 * U
    _, _, _, phases, timer = make(
        {"forward": cost},
        sync_cost=sync_cost,
        overhead_factor=factor,
        budget_s=0.5,
        warmup_s=2.0**-6,
        min_block_s=2.0**-20,
    )
    case = timer.measure(phases)
    fwd = case["forward"]
    # An empty block is one clock read, one sync: its fake cost is exactly S.
    assert case.overhead_s == sync_cost
    # Here the overhead factor, not the budget share or min_block_s, sets the target.
    assert factor * sync_cost > 0.5 / 25
    assert fwd.calls_per_block * cost + sync_cost >= factor * sync_cost
    for sample in fwd.samples_s:
        assert cost <= sample <= cost * (1 + 1 / (factor - 1))
    assert fwd.median_s == pytest.approx(cost, rel=1.01e-3)


def test_first_call_is_timed_apart_with_its_compile_time():
    compile_s = 2.0**-2
    sync_cost = 2.0**-14
    cost = 1 * U
    clock, _, works, phases, timer = make(
        {"forward": cost, "gradient": 2 * U}, sync_cost=sync_cost, first_extra=compile_s, **FAST
    )
    case = timer.measure(phases)
    # The first call is timed alone, sync included, compile included.
    assert case["forward"].first_call_s == compile_s + cost + sync_cost
    assert case["gradient"].first_call_s == compile_s + 2 * U + sync_cost
    # The first two timed regions are the two first calls, one call each.
    regions = timed_regions(clock.log)
    assert [[e[1] for e in r if e[0] == "run"] for r in regions[:2]] == [["forward"], ["gradient"]]
    # Steady state never sees the compile time: spread over a block of n calls it
    # would add compile_s / n, far more than the sync overhead allowed.
    for name, c in (("forward", cost), ("gradient", 2 * U)):
        p = case[name]
        assert compile_s / p.calls_per_block > 0.01 * c
        assert max(p.samples_s) <= c * (1 + 1 / 999)
    assert all(w.calls > 10 for w in works.values())


# --- sync once per block ---------------------------------------------------------------------


def test_sync_is_called_once_per_block_never_once_per_call():
    clock, sync, works, phases, timer = make(
        {"forward": 1 * U, "gradient": 3 * U}, budget_s=1.0, warmup_s=2.0**-6, min_block_s=2.0**-3
    )
    timer.measure(phases)
    regions = timed_regions(clock.log)
    runs_in_blocks = 0
    for region in regions:
        kinds = [e[0] for e in region]
        # Inside the timed region: the calls back to back, then exactly one sync.
        assert kinds.count("sync") == 1
        assert kinds[-1] == "sync"
        assert set(kinds[:-1]) <= {"run"}
        runs_in_blocks += len(kinds) - 1
    calls = sum(w.calls for w in works.values())
    # Outside the timed regions: one settling call per block (not before the
    # very first call of a phase), each waited for before its block starts.
    timed = {id(e) for r in regions for e in r}
    settling = [i for i, e in enumerate(clock.log) if e[0] == "run" and id(e) not in timed]
    assert runs_in_blocks + len(settling) == calls
    blocks_of_calls = [r for r in regions if any(e[0] == "run" for e in r)]  # not the empty overhead blocks
    assert len(settling) == len(blocks_of_calls) - len(phases)
    for i in settling:
        assert clock.log[i + 1][0] == "sync" and clock.log[i + 2] == ("clock",)
    # At most two more, untimed, syncs per block (after prepare and after the settling call).
    assert len(regions) <= sync.calls <= 3 * len(regions)
    assert calls > 5 * sync.calls
    # Blocks of many calls exist, and each still has a single sync.
    assert max(len(r) - 1 for r in regions) >= 5


# --- calibration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "target", "sync_cost"),
    [(U, 2.0**-3, 0.0), (U / 64, 2.0**-2, 0.0), (3 * U, 2.0**-4, 2.0**-12), (2.0**-1, 2.0**-3, 0.0)],
)
def test_calibrate_grows_the_block_until_it_lasts_the_target(cost, target, sync_cost):
    clock, _, _, phases, timer = make({"f": cost}, sync_cost=sync_cost)
    n = timer.calibrate(phases[0], target)
    assert n * cost + sync_cost >= target
    # Not wildly more than needed: it aims at 1.05x, and at most doubles past it.
    needed = max(1, math.ceil((target - sync_cost) / cost))
    assert n <= max(2.2 * needed, 1)
    # The blocks tried grow strictly, at most 100x per step, and the last is n.
    sizes = [len(r) - 1 for r in timed_regions(clock.log)]
    assert sizes[-1] == n
    assert all(b > a for a, b in itertools.pairwise(sizes))
    assert all(b <= 100 * a for a, b in itertools.pairwise(sizes))
    # Every block but the last fell short of the target.
    assert all(s * cost + sync_cost < target for s in sizes[:-1])


def test_calibrate_stops_at_the_block_size_cap():
    _, _, works, phases, timer = make({"f": U}, max_calls_per_block=50)
    works["f"].max_calls = 1000
    assert timer.calibrate(phases[0], target_s=10.0) == 50
    assert 50 * U < 10.0


# --- rounds ----------------------------------------------------------------------------------


def test_rounds_stop_once_the_budget_is_spent():
    budget = 0.25
    _, _, _, phases, timer = make({"forward": 1 * U, "gradient": 3 * U}, budget_s=budget,
                                  warmup_s=2.0**-6, min_block_s=2.0**-8, min_rounds=3)
    case = timer.measure(phases)
    spent = list(itertools.accumulate(round_times(case)))
    assert case.rounds > 3  # the budget, not min_rounds, decided here
    assert spent[-1] >= budget
    assert spent[-2] < budget  # no round started after the budget was spent
    assert all(len(p.samples_s) == case.rounds for p in case.phases)


def test_at_least_min_rounds_even_when_one_round_spends_the_budget():
    # Each block lasts >= min_block_s = 1 s, four times the whole budget.
    _, _, _, phases, timer = make({"forward": 2.0**-4}, budget_s=0.25, warmup_s=0.0,
                                  min_block_s=1.0, min_rounds=7, max_rounds=50)
    case = timer.measure(phases)
    assert round_times(case)[0] >= 0.25
    assert case.rounds == 7


def test_max_rounds_caps_the_rounds():
    _, _, _, phases, timer = make({"forward": 2.0**-4}, budget_s=1000.0, warmup_s=0.0,
                                  min_block_s=0.0, target_rounds=1000, min_rounds=2, max_rounds=9)
    case = timer.measure(phases)
    assert case.rounds == 9
    assert sum(round_times(case)) < 1000.0


def test_phase_order_rotates_between_rounds():
    names = ["a", "b", "c"]
    clock, _, _, phases, timer = make({"a": 1 * U, "b": 2 * U, "c": 3 * U}, budget_s=0.125,
                                      warmup_s=0.0, min_block_s=2.0**-8, min_rounds=7)
    case = timer.measure(phases)
    rounds = case.rounds
    assert rounds >= 7
    order = [r[0][1] for r in timed_regions(clock.log)[-3 * rounds :]]
    by_round = [order[3 * i : 3 * i + 3] for i in range(rounds)]
    for i, names_in_round in enumerate(by_round):
        k = i % 3
        assert names_in_round == names[k:] + names[:k]
    # So every phase leads a third of the rounds, not always the first one.
    assert {r[0] for r in by_round} == set(names)


# --- prepare ---------------------------------------------------------------------------------


def test_prepare_runs_untimed_before_each_block_and_feeds_run():
    clock = FakeClock()
    sync = FakeSync(clock, 0.0)
    work = FakeWork(clock, "backward_split", 2 * U)
    tokens = itertools.count()

    def prepare():
        clock.advance(1.0)  # a whole second of untimed recording per block
        token = ("state", next(tokens))
        clock.log.append(("prepare", token))
        return token

    timer = Timer(sync, TimingConfig(**FAST), clock=clock)
    case = timer.measure([Phase("backward_split", run=work, prepare=prepare)])
    # The second of preparation never reaches a sample or the first call.
    assert set(case["backward_split"].samples_s) == {2 * U}
    assert case["backward_split"].first_call_s == 2 * U
    # Walk the log: each block is prepare -> (untimed) -> clock, runs, sync, clock,
    # and every run of the block gets the state its prepare returned.
    reads = [i for i, e in enumerate(clock.log) if e[0] == "clock"]
    blocks = 0
    for start, end in list(itertools.pairwise(reads))[::2]:
        runs = [e for e in clock.log[start + 1 : end] if e[0] == "run"]
        if not runs:
            continue  # the empty overhead blocks have no phase, hence no prepare
        blocks += 1
        before = [e for e in clock.log[:start] if e[0] in ("prepare", "clock")]
        assert before[-1][0] == "prepare"  # prepared after the previous block, before this one
        assert {e[2] for e in runs} == {before[-1][1]}
    prepares = sum(1 for e in clock.log if e[0] == "prepare")
    assert prepares == blocks
    assert blocks >= case.rounds + 2  # first call, calibration, warm-up, rounds


# --- paired ratio ----------------------------------------------------------------------------


def test_paired_ratio_of_costs_one_and_three_is_three():
    _, _, _, phases, timer = make({"forward": 1 * U, "gradient": 3 * U}, **FAST)
    case = timer.measure(phases)
    r = case.ratio("gradient")
    assert r.value == 3.0
    assert 3.0 in r
    assert not math.isnan(r.low) and not math.isnan(r.high)
    d = case.difference("gradient", "forward")
    assert d.value == 2 * U
    assert 2 * U in d


def test_paired_ratio_stays_three_within_the_overhead_bound_with_a_sync_cost():
    _, _, _, phases, timer = make({"forward": 1 * U, "gradient": 3 * U}, sync_cost=2.0**-16, **FAST)
    case = timer.measure(phases)
    assert case.ratio("gradient", "forward").value == pytest.approx(3.0, rel=2e-3)


def test_measure_without_phases_and_unknown_phase():
    _, _, _, _, timer = make({})
    empty = timer.measure([])
    assert empty.rounds == 0
    assert math.isnan(empty.overhead_s)
    _, _, _, phases, timer = make({"forward": U}, **FAST)
    with pytest.raises(KeyError):
        timer.measure(phases)["gradient"]


# --- recompiles -----------------------------------------------------------------------------


def test_traces_during_the_rounds_are_counted_as_recompiles():
    _, _, works, phases, timer = make({"forward": U, "gradient": 3 * U}, **FAST)
    traced = {"n": 0}
    work = works["gradient"]

    def retracing(state):
        # A recompile inside the timed rounds: every 5th gradient call traces again.
        if work.calls % 5 == 4:
            traced["n"] += 1
        return work(state)

    case = timer.measure([phases[0], Phase("gradient", retracing)], traces=lambda: traced["n"])
    # Traces before the rounds (first call, calibration, warm-up) are not counted.
    assert 0 < case.recompiles < traced["n"] + 1
    assert case.recompiles == traced["n"] - traced_before_rounds(case, work, traced)


def traced_before_rounds(case: CaseTiming, work, traced) -> int:
    # Each block of the rounds is one settling call and calls_per_block timed ones.
    calls_in_rounds = case.rounds * (case["gradient"].calls_per_block + 1)
    first = work.calls - calls_in_rounds
    return sum(1 for c in range(first) if c % 5 == 4)


def test_a_steady_state_has_no_recompiles():
    _, _, _, phases, timer = make({"forward": U, "gradient": 3 * U}, **FAST)
    count = {"n": 7}  # traces from before the measurement do not matter
    assert timer.measure(phases, traces=lambda: count["n"]).recompiles == 0
    assert timer.measure(phases).recompiles == 0


# --- cache policy ----------------------------------------------------------------------------


def test_flush_runs_untimed_and_synced_before_every_block_of_calls():
    clock = FakeClock()
    sync = FakeSync(clock)
    work = FakeWork(clock, "forward", 1 * U)
    flushes = []

    def flush():
        # A flush costs fake time: it must stay outside every timed region.
        flushes.append(clock.now)
        clock.advance(64 * U)
        clock.log.append(("flush",))
        return "flushed"

    timer = Timer(sync, TimingConfig(**FAST), clock=clock, flush=flush)
    case = timer.measure([Phase("forward", run=work)])
    assert set(case["forward"].samples_s) == {1 * U}  # the flush's 64 U never count
    regions = timed_regions(clock.log)
    assert not any(("flush",) in r for r in regions)
    blocks = [r for r in regions if any(e[0] == "run" for e in r)]
    # One flush per block that calls the phase; the overhead's empty blocks need none.
    assert len(flushes) == len(blocks)
    # Each flush is waited for before its block's clock starts.
    for i, event in enumerate(clock.log):
        if event == ("flush",):
            assert clock.log[i + 1] == ("sync", "flushed") and clock.log[i + 2] == ("clock",)


def test_without_a_flush_policy_nothing_is_flushed():
    clock, _, _, phases, timer = make({"forward": 1 * U}, **FAST)
    timer.measure(phases)
    assert timer.flush is None and ("flush",) not in clock.log


# --- drift and interference ------------------------------------------------------------------


class SlowingWork(FakeWork):
    """Costs ``cost`` per call, then ``factor`` times more from call ``after`` on (another job started)."""

    def __init__(self, clock: FakeClock, cost: float, after: int, factor: float) -> None:
        super().__init__(clock, "forward", cost)
        self.after, self.factor = after, factor

    def __call__(self, state):
        if self.calls >= self.after:
            self.clock.advance(self.cost * (self.factor - 1))
        return super().__call__(state)


def test_a_phase_that_slows_down_mid_case_is_calibrated_again():
    clock = FakeClock()
    work = SlowingWork(clock, 1 * U, after=120, factor=4)
    timer = Timer(FakeSync(clock), TimingConfig(**FAST), clock=clock)
    case = timer.measure([Phase("forward", run=work)])
    t = case["forward"]
    assert t.recalibrations == 1
    # Drift is judged against the first calibration: the slowdown stays visible.
    assert t.calibrated_s == 1 * U
    assert t.drift == t.median_s / (1 * U) and t.drift > 1
    assert t.samples_s[0] == 1 * U and t.samples_s[-1] == 4 * U
    # Blocks are resized to the budget's target again, instead of running 4x longer.
    assert t.calls_per_block * 4 * U < 2 * max(FAST["min_block_s"], FAST["budget_s"] / 25)


def test_a_steady_phase_is_never_calibrated_again():
    _, _, _, phases, timer = make({"forward": 1 * U, "gradient": 3 * U}, **FAST)
    case = timer.measure(phases)
    assert all(p.recalibrations == 0 and p.drift == 1.0 for p in case.phases)


def test_interference_is_the_other_cpu_per_round_as_a_fraction_of_one_cpu():
    from bench.measure.interference import CpuTimes

    clock = FakeClock()
    reads = []

    def monitor():
        # Other processes take half a CPU and the hypervisor a tenth, all along.
        reads.append(clock.now)
        return CpuTimes(other_s=0.5 * clock.now, steal_s=0.1 * clock.now)

    work = FakeWork(clock, "forward", 1 * U)
    timer = Timer(FakeSync(clock), TimingConfig(**FAST), clock=clock, monitor=monitor)
    case = timer.measure([Phase("forward", run=work)])
    assert len(case.interference) == len(case.steal) == case.rounds == len(reads) // 2
    assert case.interference == pytest.approx([0.5] * case.rounds)
    assert case.steal == pytest.approx([0.1] * case.rounds)


def test_without_a_monitor_no_interference_is_claimed():
    _, _, _, phases, timer = make({"forward": 1 * U}, **FAST)
    assert timer.measure(phases).interference == ()


def test_interference_share_of_unknown_readings_is_nan():
    from bench.measure.interference import CpuTimes, share

    assert all(math.isnan(x) for x in share(None, CpuTimes(1, 1), 1.0))
    assert share(CpuTimes(5.0, 0.0), CpuTimes(4.9, 0.0), 1.0) == (0.0, 0.0)  # tick rounding


# --- adaptive precision ----------------------------------------------------------------------


class NoisyWork(FakeWork):
    """Costs ``cost`` times a random factor per call (seeded): rounds scatter, and more rounds help."""

    def __init__(self, clock: FakeClock, name: str, cost: float, sigma: float, seed: int) -> None:
        super().__init__(clock, name, cost)
        self.rng = np.random.default_rng(seed)
        self.sigma = sigma

    def __call__(self, state):
        self.clock.advance(self.cost * self.sigma * abs(self.rng.standard_normal()))
        return super().__call__(state)


def noisy_case(precision, sigma=0.3, max_time_s=30.0):
    clock = FakeClock()
    phases = [Phase("forward", NoisyWork(clock, "forward", 1 * U, sigma, 1)),
              Phase("gradient", NoisyWork(clock, "gradient", 3 * U, sigma, 2))]
    config = TimingConfig(budget_s=0.1, warmup_s=2.0**-6, min_block_s=2.0**-8, precision=precision,
                          max_time_s=max_time_s)
    return Timer(FakeSync(clock), config, clock=clock).measure(phases)


def test_precision_adds_rounds_until_r_is_that_precise():
    plain = noisy_case(None)
    precise = noisy_case(0.02)
    assert math.isnan(plain.precision)
    first = stats_half_width(plain)
    assert first > 0.02  # the budget alone leaves R less precise than asked
    assert precise.rounds > plain.rounds
    assert precise.precision <= 0.02 and stats_half_width(precise) <= 0.02


def test_precision_stops_at_the_time_cap():
    capped = noisy_case(0.0001, max_time_s=0.5)
    assert capped.precision > 0.0001
    spent = sum(round_times(capped))
    assert spent < 0.5 + 0.2  # the cap, plus the round in progress when it was reached


def test_a_precise_enough_case_stops_at_the_budget():
    quiet = noisy_case(0.5, sigma=0.0)
    plain = noisy_case(None, sigma=0.0)
    assert quiet.rounds == plain.rounds and quiet.precision < 0.5


def stats_half_width(case: CaseTiming) -> float:
    r = case.ratio("gradient")
    return (r.high - r.low) / 2 / r.value


def test_a_phase_that_speeds_up_after_calibration_is_not_calibrated_again():
    clock = FakeClock()
    work = SlowingWork(clock, 4 * U, after=30, factor=0.25)  # 4x faster once warm
    case = Timer(FakeSync(clock), TimingConfig(**FAST), clock=clock).measure([Phase("forward", run=work)])
    assert case["forward"].recalibrations == 0 and case["forward"].drift == 0.25


def test_the_interference_peak_spans_stretches_long_enough_to_hold_many_ticks():
    # Eighty 20 ms rounds: one reads a single 10 ms tick (half a CPU), the rest nothing.
    shares = (0.0,) * 10 + (0.5,) + (0.0,) * 69
    case = CaseTiming((), 0.0, interference=shares, round_s=(0.02,) * 80)
    assert max(shares) == 0.5
    assert case.interference_peak() == pytest.approx(0.5 * 0.02 / 1.0)  # one tick in a 1 s stretch
    # A burst that lasts two seconds fills at least one whole window.
    burst = (0.0,) * 20 + (0.8,) * 100 + (0.0,) * 10
    assert CaseTiming((), 0.0, interference=burst, round_s=(0.02,) * 130).interference_peak() >= 0.6
    busy = CaseTiming((), 0.0, interference=(0.9,) * 20, round_s=(0.02,) * 20)
    assert busy.interference_peak() == pytest.approx(0.9)
    short = CaseTiming((), 0.0, interference=(0.2, 0.4), round_s=(0.05, 0.05))
    assert short.interference_peak() == pytest.approx(0.3)  # all rounds together, shorter than a window


def test_the_interference_of_short_rounds_is_their_total_not_the_median_of_quantized_rounds():
    """Seen in CI: a CPU hog beside a tiny case read 0.96 CPU on one case and 0.0 on the next.
    Rounds of 5 ms hold at most one 10 ms tick each: most rounds read 0 and a few read 2 CPUs,
    so their median is 0 while the hog took 0.6 CPU. The total over all rounds is not quantized."""
    shares = (0.0, 0.0, 2.0) * 30  # one round in three catches a tick of the hog
    case = CaseTiming((), 0.0, interference=shares, round_s=(0.005,) * 90)
    assert sorted(shares)[len(shares) // 2] == 0.0  # what the median said
    assert case.interference_share() == pytest.approx(2.0 / 3)
    # Rounds of different lengths weigh by their length; rounds without a reading do not count.
    mixed = CaseTiming((), 0.0, interference=(1.0, 0.0, math.nan), round_s=(0.3, 0.1, 0.5))
    assert mixed.interference_share() == pytest.approx(0.75)
    assert math.isnan(CaseTiming((), 0.0).interference_share())
