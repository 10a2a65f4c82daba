"""Compare and report at fleet scale: vectorised statistics, aggregates instead of a row per case."""

from __future__ import annotations

import base64
import gzip
import math
import re
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.present import report
from bench.present.report import data as report_data
from bench.stats import bootstrap, change, intervals

PHASES = ("forward", "gradient", "step")


def synthetic(cases: int, seed: int = 0, samples: int = 20, factor: float = 1.0, suites: int = 3,
              run_id: str = "20261126T000000Z-aaaa") -> pd.DataFrame:
    """``cases`` cases x 3 phases of one framework, 20 lognormal samples per row, sizes spread
    over four decades; ``factor`` scales every time (a slowdown > 1)."""
    cases_rng, rng = np.random.default_rng(0), np.random.default_rng(seed)  # the same cases, new noise
    fwd = 1e-4 * np.exp(cases_rng.normal(0, 1, cases))
    size = 10 ** cases_rng.uniform(5, 9, cases)
    rows = []
    for i in range(cases):
        for phase, k in zip(PHASES, (1.0, 2.5, 2.6), strict=True):
            s = factor * fwd[i] * k * rng.lognormal(0.0, 0.03, samples)
            rows.append({
                "run_id": run_id, "machine": "m", "suite": f"suite_{i % suites}", "case": f"batch={i + 1}",
                "params": "{}", "framework": "jax", "mode": "jit", "device": "cpu", "dtype": "float32",
                "phase": phase, "status": "ok", "median_s": float(np.median(s)), "samples_s": s,
                "ratio": k, "ratio_ci_low": k * 0.98, "ratio_ci_high": k * 1.02, "theory_ratio": k,
                "flops": size[i] * k, "quality": "good", "quality_reason": "",
            })
    return pd.DataFrame(rows)


# --- batched statistics against the one-row ones ------------------------------------------------

samples = st.lists(st.floats(1e-6, 1.0), min_size=0, max_size=25)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(samples, samples), min_size=1, max_size=6))
def test_batched_verdicts_equal_the_one_row_test_and_medians(pairs):
    from scipy import stats as sps

    base, new = [np.array(a) for a, _ in pairs], [np.array(b) for _, b in pairs]
    value, low, high, p, call = change.changes(base, new)
    for i, (a, b) in enumerate(zip(base, new, strict=True)):
        if len(a) and len(b):
            assert value[i] == np.median(a) / np.median(b)
        if len(a) >= change.MIN_SAMPLES and len(b) >= change.MIN_SAMPLES:
            assert p[i] == pytest.approx(float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue),
                                         rel=1e-9, abs=1e-12)
            assert low[i] <= high[i]
        else:
            assert math.isnan(p[i]) and call[i] in change.UNTESTED


def test_the_one_row_intervals_are_rows_of_the_batched_bootstrap():
    """One bootstrap: a row's interval is the same whether it is computed alone or among others."""
    rng = np.random.default_rng(3)
    rows = [1e-3 * rng.lognormal(0, 0.1, n) for n in (5, 20, 20, 31)]
    others = [1e-3 * rng.lognormal(0, 0.1, n) for n in (7, 20, 15, 31)]
    value, low, high = bootstrap.ratio_of_medians(rows, others)
    for i, (a, b) in enumerate(zip(rows, others, strict=True)):
        ci = intervals.ratio_of_medians(a, b)
        assert (value[i], low[i], high[i]) == (ci.value, ci.low, ci.high)
    med, mlo, mhi = bootstrap.median_cis(rows)
    for i, a in enumerate(rows):
        ci = intervals.median_ci(a)
        assert (med[i], mlo[i], mhi[i]) == (ci.value, ci.low, ci.high)
        assert mlo[i] < med[i] < mhi[i]


def test_a_nan_among_the_samples_gives_no_interval():
    """The rows are validated times: one with a NaN is broken, and has no median and no interval
    (the bootstrap of the others once left the NaN out of most resamples: [3, 8] beside a NaN median)."""
    a = np.array([1.0, 2.0, math.nan, *range(3, 11)])
    ones = np.ones(len(a))
    value, low, high = bootstrap.ratio_of_medians([a, ones], [ones, ones])
    ci = intervals.ratio_of_medians(a, ones)
    assert math.isnan(value[0]) and math.isnan(ci.value)
    assert math.isnan(low[0]) and math.isnan(high[0]) and math.isnan(ci.low) and math.isnan(ci.high)
    assert low[1] == high[1] == 1.0
    one = intervals.median_ci(a)
    assert math.isnan(one.value) and math.isnan(one.low) and math.isnan(one.high)
    _, low, high = bootstrap.median_cis([a, ones])
    assert math.isnan(low[0]) and math.isnan(high[0]) and low[1] == high[1] == 1.0


# --- compare at scale -------------------------------------------------------------------------


def test_comparing_thousands_of_cases_takes_seconds_not_minutes():
    """3,000 rows a side: about 20 s with a bootstrap and a test per row in a Python loop."""
    base = synthetic(1000)
    new = synthetic(1000, seed=1, factor=1.3)
    start = time.perf_counter()
    table, unmatched = change.compare(base, new)
    ratios = change.compare_ratios(base, new)
    elapsed = time.perf_counter() - start
    assert len(table) == 3000 and unmatched.empty and len(ratios) == 1000
    assert (table.verdict == "slower").all()
    assert table.speedup.between(0.7, 0.85).all()
    assert (table.speedup_ci_low <= table.speedup).all() and (table.speedup <= table.speedup_ci_high).all()
    assert elapsed < 8, f"compare of 3,000 rows took {elapsed:.1f} s"


def test_large_compare_keeps_the_calls_of_every_kind_of_row():
    """Untested, unreliable, shifted and unchanged rows in one table: each called as the one-row rules say."""
    base = synthetic(40)
    new = synthetic(40, seed=1)
    faster = new.case.isin([f"batch={i}" for i in range(1, 11)])
    new.loc[faster, "samples_s"] = new.loc[faster, "samples_s"].map(lambda s: s / 2)
    new.loc[faster, "median_s"] = new.loc[faster, "median_s"] / 2
    bare = new.case.isin([f"batch={i}" for i in range(11, 16)])
    new.loc[bare, "samples_s"] = pd.Series([np.array([])] * int(bare.sum()), index=new.index[bare])
    new.loc[bare, "median_s"] = new.loc[bare, "median_s"] * 3  # a slowdown seen by the medians alone
    shaky = new.case.isin([f"batch={i}" for i in range(16, 21)])
    new.loc[shaky, "quality"] = "unreliable"
    table, _ = change.compare(base, new)
    calls = table.set_index("case").verdict
    assert set(calls[[f"batch={i}" for i in range(1, 11)]]) == {"faster"}
    assert set(calls[[f"batch={i}" for i in range(11, 16)]]) == {change.NO_SAMPLES}
    assert set(calls[[f"batch={i}" for i in range(16, 21)]]) == {change.INCONCLUSIVE}
    assert set(calls[[f"batch={i}" for i in range(21, 41)]]) == {"no significant change"}
    untested = table[table.verdict == change.NO_SAMPLES]
    assert np.allclose(untested.speedup, untested.base_median_s / untested.new_median_s)
    assert untested.speedup_ci_low.isna().all() and untested.p_value.isna().all()
    # Every row counts for --fail-on-regression, however the terminal shows them.
    assert set(change.regressions(table, 0.05).case) == {f"batch={i}" for i in range(11, 16)}


def test_the_summary_counts_every_row_once():
    base = synthetic(300)
    new = synthetic(300, seed=1, factor=0.5)
    table, _ = change.compare(base, new)
    s = change.summary(table)
    assert list(s.columns[:5]) == list(change.SUMMARY_KEYS)
    assert s.cases.sum() == len(table) == 900
    assert (s.faster == s.cases).all()
    assert (s[["slower", "no_change", "inconclusive", "untested"]] == 0).all().all()
    assert np.allclose(s.geomean_speedup, 2.0, rtol=0.05)
    assert len(s) == 3 * 3  # 3 suites x 3 phases


# --- report at scale --------------------------------------------------------------------------


@pytest.fixture
def large(monkeypatch):
    """A 'large' run made small: the threshold lowered so that 120 cases aggregate."""
    monkeypatch.setattr(report_data, "LARGE_CASES", 100)
    return synthetic(120)


def test_a_large_run_gets_a_summary_and_binned_figures_not_a_row_per_case(large):
    html = report.render(large, [{"run_id": "20261126T000000Z-aaaa", "machine": "m"}])
    assert "Summary per suite, machine and framework" in html
    assert "Per-case table" not in html
    assert "batch=117" not in html  # no case is listed one by one
    for fig in ("ratio-spread", "ratio-size", "times-size"):
        assert re.search(rf'<figure id="{fig}">\s*<h3>[^<]*</h3>\s*<svg', html), fig
    assert "120 cases are too many to list" in html
    m = re.search(r'href="data:application/gzip;base64,([^"]+)" download="bench-rows.csv.gz"', html)
    assert m
    rows = gzip.decompress(base64.b64decode(m.group(1))).decode().splitlines()
    assert len(rows) == 1 + len(large) and rows[0].startswith("run_id,machine,suite,case")


def test_the_summary_table_aggregates_per_suite_and_framework(large):
    d = report_data.build(large)
    s = d.summary.set_index("suite")
    assert d.large and d.cases.empty and len(s) == 3
    assert s.cases.sum() == 120 and (s.measured == s.rows).all()
    assert np.allclose(s.R, 2.5)


def test_a_download_too_large_to_embed_is_left_out_with_a_note(large, monkeypatch):
    monkeypatch.setattr(report_data, "DOWNLOAD_LIMIT", 1000)
    html = report.render(large, [])
    assert "bench-rows.csv.gz" not in html and "data:text/csv" not in html
    assert "too large to embed" in html
    assert "<code>bench export 20261126T000000Z-aaaa -o rows.csv</code> writes every row" in html


def test_a_small_run_still_lists_every_case():
    html = report.render(synthetic(20), [])
    assert "Per-case table" in html and "Summary per suite, machine and framework" not in html
    assert "batch=17" in html


def test_the_median_ci_over_many_cases_is_the_order_statistic_one():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 0.5, intervals.BOOTSTRAP_LIMIT + 1)
    lo, hi = intervals.order_statistic_ci(x)
    assert lo < np.median(x) < hi
    ci = intervals.median_ci(x)
    assert (ci.value, ci.low, ci.high) == (np.median(x), lo, hi)
    _, (boot_low,), (boot_high,) = bootstrap.median_cis([x])
    assert lo == pytest.approx(boot_low, rel=0.02) and hi == pytest.approx(boot_high, rel=0.02)


# --- pooling runs at scale --------------------------------------------------------------------


def pooled_one_by_one(df: pd.DataFrame) -> pd.DataFrame:
    """change.pooled as it was, one group at a time: the reference the grouped one must match."""
    ok = df[df.status == "ok"]
    out = [df[df.status != "ok"]]
    keys = [k for k in change.KEYS if k in df.columns]
    for _, group in ok.groupby(keys, sort=False, dropna=False):
        last = group.iloc[[-1]].copy()
        if len(group) > 1:
            parts = [np.asarray(s if s is not None else (), dtype=float) for s in group.samples_s]
            whole = all(len(p) for p in parts)
            samples = np.concatenate(parts) if whole else np.array([], dtype=float)
            last["samples_s"] = pd.Series([samples], index=last.index, dtype=object)
            last["median_s"] = (intervals.median(samples) if whole
                                else float(np.median(group.median_s.astype(float))))
            levels = [q for q in ("unreliable", "noisy", "good") if (group.quality == q).any()]
            last["quality"] = levels[0] if levels else last["quality"].iloc[0]
        out.append(last)
    return pd.concat([f for f in out if len(f)] or [df.iloc[:0]], ignore_index=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(PHASES), st.sampled_from(["ok", "failed"]),
                          st.sampled_from(["good", "noisy", "unreliable"]), st.integers(0, 4)),
                min_size=1, max_size=25))
def test_pooling_in_one_pass_equals_pooling_case_by_case(rows):
    df = pd.DataFrame([{"suite": "s", "case": f"c{c}", "framework": "jax", "mode": "jit", "device": "cpu",
                        "dtype": "float32", "phase": phase, "status": status, "quality": quality,
                        "median_s": 1.0 + i, "samples_s": np.arange(n, dtype=float) + i, "run_id": f"r{i}"}
                       for i, (c, phase, status, quality, n) in enumerate(rows)])
    got, want = change.pooled(df), pooled_one_by_one(df)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for col in ("case", "phase", "status", "quality", "run_id"):
        assert got[col].tolist() == want[col].tolist(), col
    assert np.allclose(got.median_s.astype(float), want.median_s.astype(float), equal_nan=True)
    for a, b in zip(got.samples_s, want.samples_s, strict=True):
        assert np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def test_pooling_two_runs_of_thousands_of_cases_takes_seconds():
    runs = pd.concat([synthetic(3000, run_id="r1"), synthetic(3000, seed=1, run_id="r2")], ignore_index=True)
    start = time.perf_counter()
    out = change.pooled(runs)
    elapsed = time.perf_counter() - start
    assert len(out) == 9000 and (out.samples_s.map(len) == 40).all()
    assert elapsed < 5, f"pooling 18,000 rows took {elapsed:.1f} s"
