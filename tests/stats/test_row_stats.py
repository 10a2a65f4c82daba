"""bench.stats.rows: statistics from raw samples, and merging the processes of a case."""

from __future__ import annotations

import dataclasses

import pytest
from factories import process

from bench.core.records import Record
from bench.stats import intervals, row_stats
from bench.store.reader import load
from bench.store.writer import ResultsWriter


def by_phase(rows):
    return {r.phase: r for r in rows}


def test_merge_pools_the_rounds_and_recomputes_every_statistic():
    one = process([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], equiv_error=1e-7, saved_bytes=64.0)
    two = process([1.0, 1.0], [3.0, 3.0], interference=0.3, interference_max=0.6)
    merged = by_phase(row_stats.merge(one, two))
    g = merged["gradient"]
    assert g.process_rounds == (3, 2) and g.rounds == 5
    assert g.samples_s == (2.0, 2.0, 2.0, 3.0, 3.0)
    assert g.median_s == 2.0 and g.ratio == 2.0
    expected = intervals.paired_ratio(g.samples_s, merged["forward"].samples_s, (3, 2))
    assert (g.ratio_ci_low, g.ratio_ci_high) == (expected.low, expected.high)
    assert g.ratio_ci_high > 2.9  # the second process's R is inside the interval
    assert merged["backward"].samples_s == (1.0, 1.0, 1.0, 2.0, 2.0)
    assert g.flops_per_s == 100.0 / 2.0
    # What the first process alone measured is kept; the worst interference speaks for the case.
    assert g.equiv_error == 1e-7 and g.saved_bytes == 64.0
    assert g.interference == 0.3 and g.interference_max == 0.6
    assert g.quality in ("good", "noisy", "unreliable")


def test_merge_of_a_third_process_keeps_the_process_order():
    a = process([1.0] * 3, [2.0] * 3)
    b = process([1.0] * 4, [2.2] * 4)
    c = process([1.0] * 2, [1.9] * 2)
    merged = by_phase(row_stats.merge(row_stats.merge(a, b), c))
    assert merged["gradient"].process_rounds == (3, 4, 2)
    assert merged["gradient"].samples_s == (2.0,) * 3 + (2.2,) * 4 + (1.9,) * 2


def test_a_failed_first_process_decides_and_a_crashed_later_one_adds_nothing():
    failed = process([], [], status="failed")
    later = process([1.0] * 3, [2.0] * 3)
    assert row_stats.merge(failed, later) == failed
    good = process([1.0] * 3, [2.0] * 3)
    crashed = process([], [], status="crashed")
    assert row_stats.merge(good, crashed) == good


def test_skipped_phases_stay_skipped():
    a = process([1.0] * 3, [2.0] * 3)
    a[3] = dataclasses.replace(a[3], status="skipped", reason="graph mode", samples_s=())
    b = process([1.0] * 3, [2.0] * 3)
    b[3] = dataclasses.replace(b[3], status="skipped", reason="graph mode", samples_s=())
    merged = by_phase(row_stats.merge(a, b))
    assert merged["backward_split"].status == "skipped" and merged["gradient"].process_rounds == (3, 3)


def test_the_writer_folds_later_processes_into_the_stored_rows(tmp_path):
    path = tmp_path / "m" / "run.parquet"
    w = ResultsWriter(path, {"run_id": "run", "machine": "m"})
    first = process([1.0] * 3, [2.0] * 3)
    other = [dataclasses.replace(r, case="d") for r in process([1.0] * 3, [2.5] * 3)]
    w.append([*first, *other])
    w.merge(process([1.0] * 3, [2.4] * 3))
    df = load(path)
    assert len(df) == 10
    c = df[(df.case == "c") & (df.phase == "gradient")].iloc[0]
    d = df[(df.case == "d") & (df.phase == "gradient")].iloc[0]
    assert list(c.process_rounds) == [3, 3] and c.rounds == 6
    assert list(d.process_rounds) == [] and d.rounds == 3  # another case is untouched


@pytest.mark.parametrize("sizes", [(), (5,)])
def test_one_process_gives_the_same_numbers_with_or_without_sizes(sizes):
    f, g = [1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.3, 1.9, 2.1, 2.0]
    assert row_stats.measured(g, f, sizes) == row_stats.measured(g, f)


def three_processes(case: str, ratios: tuple[float, float, float], framework: str = "torch",
                    device: str = "cpu") -> list[Record]:
    """A case measured in three processes whose R are ``ratios`` (forward 1 s per round)."""
    kw = dict(case=case, framework=framework, device=device)
    rows = process([1.0] * 4, [ratios[0]] * 4, **kw)
    for r in ratios[1:]:
        rows = row_stats.merge(rows, process([1.0] * 4, [r] * 4, **kw))
    return rows


def test_pool_narrows_multi_process_intervals_with_the_runs_shared_spread():
    cases = [three_processes(f"c{i}", (2.0 * (1 + d), 2.0, 2.0 * (1 - d)))
             for i, d in enumerate((0.02, 0.03, 0.025, 0.02, 0.03, 0.025))]
    # Another framework on the same device shares the machine: it borrows the spread.
    jax = three_processes("j", (2.0, 2.0, 2.0), framework="jax")
    lone = three_processes("gpu", (2.0, 2.0, 2.0), device="cuda")  # another device: nothing to borrow
    single = process([1.0] * 5, [2.0, 2.1, 1.9, 2.0, 2.05], case="one")  # one process: left alone
    rows = [r for c in cases for r in c] + jax + lone + single
    pooled = row_stats.pool(rows)
    assert len(pooled) == len(rows)
    before = {(r.case, r.framework, r.phase): r for r in rows}
    after = {(r.case, r.framework, r.phase): r for r in pooled}
    g0, p0 = before[("c2", "torch", "gradient")], after[("c2", "torch", "gradient")]
    assert p0.ratio == g0.ratio == 2.0
    # t(2) = 4.30 on the case's own 3 processes against t(2 + 4) = 2.45 with the pooled spread.
    assert p0.ratio_ci_low < 2.0 < p0.ratio_ci_high
    assert (p0.ratio_ci_high - p0.ratio_ci_low) < 0.7 * (g0.ratio_ci_high - g0.ratio_ci_low)
    assert p0.quality in ("good", "noisy", "unreliable")
    # Processes that agree exactly are not certain to 0 %: the torch cases lend their spread.
    j = after[("j", "jax", "gradient")]
    assert j.ratio_ci_low < 1.99 and j.ratio_ci_high > 2.01
    gpu = after[("gpu", "torch", "gradient")]
    assert gpu.ratio_ci_low == gpu.ratio_ci_high == 2.0
    assert after[("one", "torch", "gradient")] == before[("one", "torch", "gradient")]


def test_pool_lends_a_spread_to_a_case_whose_processes_agree():
    noisy = [three_processes(f"c{i}", (2.1, 2.0, 1.9)) for i in range(4)]
    calm = three_processes("calm", (2.0, 2.0, 2.0))
    pooled = {(r.case, r.phase): r for r in row_stats.pool([r for c in [*noisy, calm] for r in c])}
    g = pooled[("calm", "gradient")]
    assert g.ratio_ci_low < 1.99 and g.ratio_ci_high > 2.01


def test_one_case_with_an_odd_process_does_not_widen_the_others():
    # Seen on the 2-core VM: one JAX process at R 1.7 against 2.6 gave, through
    # a mean of the variances, every JAX case of its run a 17-26 % half-width.
    calm = [three_processes(f"c{i}", (2.0 * (1 + d), 2.0, 2.0 * (1 - d)))
            for i, d in enumerate((0.02, 0.03, 0.025, 0.02))]
    odd = three_processes("odd", (2.6, 1.7, 2.6))
    rows = row_stats.pool([r for c in [*calm, odd] for r in c])
    after = {(r.case, r.phase): r for r in rows}
    def half(case: str) -> float:
        g = after[(case, "gradient")]
        return (g.ratio_ci_high - g.ratio_ci_low) / 2 / g.ratio

    calm_half = max(half(f"c{i}") for i in range(4))
    assert calm_half < 0.06
    # The odd case keeps a wide interval of its own: its spread has a say.
    assert half("odd") > max(0.10, 3 * calm_half)


def test_a_case_does_not_count_twice_in_its_own_prior():
    # Two cases only: each borrows the other's spread, not a pool holding its own.
    a = three_processes("a", (2.2, 2.0, 1.8))
    b = three_processes("b", (2.0, 2.0, 2.0))
    after = {(r.case, r.phase): r for r in row_stats.pool([*a, *b])}
    g = after[("b", "gradient")]
    # b's own spread is 0 and a's is all its prior: b's interval is a's, shrunk by the weights.
    own_a = intervals.spread([[2.2] * 4, [2.0] * 4, [1.8] * 4])
    prior = intervals.Spread.pooled([own_a])
    assert g.ratio_ci_high == pytest.approx(
        intervals.process_median_ci([[2.0] * 4] * 3, prior=prior).high, rel=1e-9)
    assert after[("a", "gradient")].ratio_ci_high == pytest.approx(
        intervals.process_median_ci([[2.2] * 4, [2.0] * 4, [1.8] * 4],
                                prior=intervals.Spread.pooled([intervals.Spread(0.0, 2)])).high, rel=1e-9)


def test_merge_of_rows_without_every_phase_keeps_what_there_is():
    keep = ("forward", "gradient")
    a = [r for r in process([1.0] * 3, [2.0] * 3) if r.phase in keep]
    b = [r for r in process([1.0] * 3, [2.2] * 3) if r.phase in keep]
    merged = row_stats.merge(a, b)
    assert [r.phase for r in merged] == list(keep)
    assert by_phase(merged)["gradient"].process_rounds == (3, 3)
