"""Verdicts across runs: right on known shifts, rarely fooled by noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.stats import change


def noisy(rng: np.random.Generator, n: int = 30, scale: float = 1e-3) -> np.ndarray:
    """Timing-like samples: lognormal noise of about 5 % around ``scale``."""
    return scale * rng.lognormal(0.0, 0.05, size=n)


@pytest.mark.parametrize(("factor", "call"), [(0.8, "faster"), (1.25, "slower"), (0.5, "faster")])
def test_known_shifts_are_called(factor, call):
    for seed in range(10):
        rng = np.random.default_rng(seed)
        v = change.change(noisy(rng), factor * noisy(rng))
        assert v.call == call
        assert v.speedup.value == pytest.approx(1 / factor, rel=0.05)


def test_a_significant_but_tiny_change_is_not_called():
    # 1 % faster with almost no noise: significant, but below the 5 % minimum effect.
    rng = np.random.default_rng(0)
    base = 1e-3 * rng.lognormal(0.0, 0.001, size=50)
    v = change.change(base, base / 1.01)
    assert v.p_value < 0.05
    assert v.call == "no significant change"
    # The same change is called once the minimum effect is below it.
    assert change.change(base, base / 1.01, min_effect=0.005).call == "faster"


def test_identical_distributions_are_rarely_called_changed():
    false_calls = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        # Noise wide enough that medians differ by more than 5 % now and then.
        base = 1e-3 * rng.lognormal(0.0, 0.2, size=15)
        new = 1e-3 * rng.lognormal(0.0, 0.2, size=15)
        false_calls += change.change(base, new).call != "no significant change"
    assert false_calls / seeds <= 0.05


def rows(medians: dict[str, float], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = []
    for case, m in medians.items():
        samples = m * rng.lognormal(0.0, 0.03, size=20)
        for phase in ("forward", "gradient", "backward"):
            out.append({"suite": "s", "case": case, "framework": "jax", "mode": "jit", "device": "cpu",
                        "phase": phase, "dtype": "float32", "status": "ok",
                        "median_s": float(np.median(samples)), "samples_s": samples})
    return pd.DataFrame(out)


def test_a_run_compared_with_itself_has_no_change_anywhere():
    df = rows({"a": 1e-3, "b": 2e-3})
    table, unmatched = change.compare(df, df)
    assert len(table) == 4  # 2 cases x (forward, gradient); the derived backward is left out
    assert (table.verdict == "no significant change").all()
    assert np.allclose(table.speedup, 1.0)
    assert unmatched.empty


def test_unmatched_cases_are_listed_not_dropped():
    base = rows({"a": 1e-3, "b": 2e-3})
    new = rows({"a": 0.5e-3, "c": 1e-3}, seed=1)
    table, unmatched = change.compare(base, new)
    assert set(table.case) == {"a"}
    assert (table.verdict == "faster").all()
    assert set(zip(unmatched.case, unmatched.side, strict=True)) == {("b", "base only"), ("c", "new only")}


def with_memory(df: pd.DataFrame, peak: dict[str, float], m: float) -> pd.DataFrame:
    """``df`` with a forward peak per case, the gradient's ``m`` times it, and saved bytes."""
    fwd = df.case.map(peak).astype(float)
    grad = df.phase == "gradient"
    return df.assign(peak_bytes=fwd.where(~grad, fwd * m), memory_ratio=np.where(grad, m, 1.0),
                     saved_bytes=fwd * 2)


def test_memory_of_both_sides_is_kept_with_its_ratio():
    base = with_memory(rows({"a": 1e-3, "b": 2e-3}), {"a": 1e6, "b": 4e6}, 3.0)
    new = with_memory(rows({"a": 1e-3, "b": 2e-3}, seed=1), {"a": 1.5e6, "b": 2e6}, 2.0)
    table, _ = change.compare(base, new)
    t = table.set_index(["case", "phase"])
    assert t.loc[("a", "forward"), ["base_peak_bytes", "new_peak_bytes"]].tolist() == [1e6, 1.5e6]
    assert t.loc[("a", "forward"), "peak_bytes_ratio"] == pytest.approx(1.5)
    # gradient of b: 3 x 4 MB in base, 2 x 2 MB in new
    assert t.loc[("b", "gradient"), "peak_bytes_ratio"] == pytest.approx(4e6 / 12e6)
    assert t.loc[("b", "gradient"), ["base_memory_ratio", "new_memory_ratio"]].tolist() == [3.0, 2.0]
    assert t.loc[("b", "gradient"), "new_saved_bytes"] == 4e6
    assert change.has_memory(table)


def test_memory_is_nan_where_a_side_did_not_measure_it():
    base = with_memory(rows({"a": 1e-3}), {"a": 1e6}, 3.0)
    table, _ = change.compare(base, rows({"a": 1e-3}))  # no memory columns at all (an old file)
    assert table.new_peak_bytes.isna().all() and table.peak_bytes_ratio.isna().all()
    assert (table.base_peak_bytes > 0).all()
    assert not change.has_memory(table)


def test_an_unreliable_side_makes_the_call_inconclusive():
    base = rows({"a": 1e-3, "b": 1e-3})
    new = rows({"a": 2e-3, "b": 2e-3}, seed=1)  # twice as slow: "slower" where both are trusted
    new["quality"] = np.where(new.case == "b", "unreliable", "good")
    table, _ = change.compare(base, new)
    calls = table.set_index(["case", "phase"]).verdict
    assert calls["a", "gradient"] == "slower"
    assert calls["b", "gradient"] == calls["b", "forward"] == change.INCONCLUSIVE
    noisy_only = new.assign(quality="noisy")
    assert (change.compare(base, noisy_only)[0].verdict == "slower").all()  # noisy still calls


def without_samples(df: pd.DataFrame, keep: int = 0) -> pd.DataFrame:
    """``df`` with only the first ``keep`` raw samples of each row (what pytest-benchmark files lack)."""
    return df.assign(samples_s=[np.asarray(s)[:keep] for s in df.samples_s])


def test_without_samples_the_medians_are_compared_and_the_verdict_says_so():
    base = rows({"a": 1e-3, "b": 2e-3})
    new = without_samples(rows({"a": 10e-3, "b": 2e-3}, seed=1))
    table, _ = change.compare(base, new)
    assert change.NO_SAMPLES == "no samples: no significance test"
    assert (table.verdict == change.NO_SAMPLES).all()
    t = table.set_index(["case", "phase"])
    for phase in ("forward", "gradient"):
        expected = t.loc[("a", phase), "base_median_s"] / t.loc[("a", phase), "new_median_s"]
        assert t.loc[("a", phase), "speedup"] == pytest.approx(expected)
    assert t.loc[("a", "forward"), "speedup"] == pytest.approx(0.1, rel=0.1)
    assert np.isfinite(table.speedup.astype(float)).all()
    # --fail-on-regression acts on the medians: a is 10x slower, b unchanged.
    worst = change.regressions(table, 0.05)
    assert set(worst.case) == {"a"} and len(worst) == 2


def test_too_few_samples_are_labelled_apart_from_none():
    base = without_samples(rows({"a": 1e-3}), keep=2)
    table, _ = change.compare(base, rows({"a": 1e-3}, seed=1))
    assert (table.verdict == change.FEW_SAMPLES).all()
    assert change.change([1e-3, 1e-3], [1e-3] * 10).call == change.FEW_SAMPLES


def test_regressions_need_a_significant_slowdown_when_there_are_samples():
    base = rows({"a": 1e-3, "b": 1e-3})
    new = rows({"a": 2e-3, "b": 1.01e-3}, seed=1)
    table, _ = change.compare(base, new)
    assert set(change.regressions(table, 0.05).case) == {"a"}
    assert change.regressions(table, 1.5).empty  # 2x slower is not 2.5x slower


def runs_of(df: pd.DataFrame, run_id: str, threads: int) -> tuple[pd.DataFrame, dict]:
    return df.assign(run_id=run_id), {"run_id": run_id, "machine": "m", "settings": {"threads": threads}}


def test_pick_takes_the_newest_run_a_named_one_or_pools_them():
    old, old_meta = runs_of(rows({"a": 1e-3}), "r1", 1)
    new, new_meta = runs_of(rows({"a": 3e-3}, 1), "r2", 2)
    both = pd.concat([old, new], ignore_index=True)
    metas = [old_meta, new_meta]
    latest = change.pick(both, metas, "latest")
    assert latest.chosen == ("r2",) and latest.runs == ("r1", "r2")
    assert set(latest.rows.run_id) == {"r2"} and latest.metadata == [new_meta]
    named = change.pick(both, metas, "r1")
    assert named.chosen == ("r1",) and named.metadata == [old_meta]
    pooled = change.pick(both, metas, "pool")
    assert pooled.chosen == ("r1", "r2")
    one = pooled.rows[(pooled.rows.case == "a") & (pooled.rows.phase == "forward")]
    assert len(one) == 1 and len(one.samples_s.iloc[0]) == 40  # the samples of both runs
    assert change.pick(both, metas, "r9") is None


def test_fingerprint_diff_of_pooled_runs_shows_every_value():
    diff = change.fingerprint_diff([{"settings": {"threads": 1}}, {"settings": {"threads": 2}}],
                                    [{"settings": {"threads": 2}}])
    assert ("settings.threads", "1 | 2", "2") in diff


def bimodal(low: float, high: float, seed: int) -> np.ndarray:
    """21 samples, 10 near ``low`` and 11 near ``high``: the median jumps between the modes."""
    rng = np.random.default_rng(seed)
    return np.concatenate([low * rng.lognormal(0, 0.001, 10), high * rng.lognormal(0, 0.001, 11)])


def test_a_significant_change_whose_ci_holds_1_is_inconclusive_not_faster():
    """Issue #11 item 3: "1.75 [0.01, 2.14] faster" must not be printed: the call agrees with its CI."""
    base, new = bimodal(1e-3, 3e-3, 0), bimodal(0.9e-3, 2.7e-3, 1)  # everything 10 % faster
    v = change.change(base, new)
    assert v.p_value < 0.05 and v.speedup.value >= 1.05  # the test and the effect alone would say faster
    assert v.speedup.low < 1 < v.speedup.high
    assert v.call == change.INCONCLUSIVE


def test_no_call_of_faster_or_slower_has_a_ci_that_holds_1():
    rng = np.random.default_rng(7)
    rows_b, rows_n = [], []
    for i in range(60):
        shift = rng.choice([0.8, 1.0, 1.1, 1.3])
        rows_b.append(bimodal(1e-3, rng.uniform(1.5, 4) * 1e-3, i) if i % 2 else noisy(rng, 12))
        second = bimodal(1e-3, rng.uniform(1.5, 4) * 1e-3, 100 + i) if i % 3 else noisy(rng, 12)
        rows_n.append(shift * second)
    value, low, high, _, call = change.changes(rows_b, rows_n)
    called = np.isin(call, ("faster", "slower"))
    assert called.any() and (call == change.INCONCLUSIVE).any()
    assert not ((low[called] <= 1) & (high[called] >= 1)).any()
    assert ((value[call == "faster"] > 1).all() and (value[call == "slower"] < 1).all())


# --- R in compare: the interval the run stored ----------------------------------------------------


def multi_process_run(run_id: str, seed: int, cases: tuple[str, ...] = ("a", "b", "c", "d")) -> list:
    """A run's records as ``bench run`` leaves them: each case in 3 processes of 8 rounds, whose
    speeds differ, its statistics over the processes narrowed by the run's pooled spread."""
    from bench.core.records import Record
    from bench.stats import row_stats

    rng = np.random.default_rng(seed)
    sizes = (8, 8, 8)
    records = []
    for case in cases:
        f = np.concatenate([1e-3 * rng.lognormal(0, 0.05) * rng.lognormal(0, 0.02, 8) for _ in sizes])
        g = f * np.concatenate([2.5 * rng.lognormal(0, 0.04) * rng.lognormal(0, 0.01, 8) for _ in sizes])
        forward = [float(x) for x in f]
        for phase, s in (("forward", f), ("gradient", g)):
            records.append(Record(
                run_id=run_id, machine="m", suite="s", case=case, params="{}", framework="jax",
                framework_version="0", mode="jit", device="cpu", phase=phase, status="ok",
                process_rounds=sizes, **row_stats.measured([float(x) for x in s], forward, sizes)))
    return row_stats.pool(records)


def write_records(path, records: list) -> None:
    from bench.store.writer import ResultsWriter

    w = ResultsWriter(path, {"run_id": path.stem, "machine": "m"})
    w.append(records)
    w.close()


def test_compare_and_the_report_show_the_R_interval_the_run_stored(tmp_path, capsys):
    """Issue #19: `bench compare` built its own interval of R (a bootstrap of every round, blind to the
    processes); a row's R reads the same in the run's summary, the report and compare."""
    import json

    from bench import store
    from bench.cli import main as cli
    from bench.present.report import data as report_data

    path = tmp_path / "m" / "r1.parquet"
    records = multi_process_run("r1", 0)
    write_records(path, records)
    stored = {r.case: r for r in records if r.phase == "gradient"}

    df, _ = store.read_runs([path], columns=change.COLUMNS)
    ratios = change.compare_ratios(df, df)
    assert len(ratios) == len(stored)
    for row in ratios.itertuples():
        r = stored[row.case]
        assert (row.base_R, row.base_R_low, row.base_R_high) == (r.ratio, r.ratio_ci_low, r.ratio_ci_high)
        assert (row.new_R_low, row.new_R_high) == (r.ratio_ci_low, r.ratio_ci_high)

    assert cli.main(["compare", str(path), str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for row in doc["R"]:
        r = stored[row["case"]]
        assert (row["base_R_low"], row["base_R_high"]) == (r.ratio_ci_low, r.ratio_ci_high)

    cases = report_data.build(store.load(path)).cases
    for case, *r_ci in cases[["case", "R", "R ci low", "R ci high"]].itertuples(index=False, name=None):
        r = stored[case]
        assert tuple(r_ci) == (r.ratio, r.ratio_ci_low, r.ratio_ci_high)


def test_a_pooled_side_has_the_interval_over_every_runs_processes(tmp_path):
    """Several runs pooled have no stored R: the interval is the one over the processes of all of them."""
    from bench import store
    from bench.stats import intervals

    runs = {"r1": multi_process_run("r1", 1), "r2": multi_process_run("r2", 2)}
    for run_id, records in runs.items():
        write_records(tmp_path / "m" / f"{run_id}.parquet", records)
    df, meta = store.read_runs([tmp_path / "m"], columns=change.COLUMNS)
    side = change.pick(df, meta, change.POOL)
    assert side.chosen == ("r1", "r2")
    ratios = change.compare_ratios(side.rows, side.rows)
    for row in ratios.itertuples():
        groups = []
        for records in runs.values():
            by = {r.phase: r for r in records if r.case == row.case}
            r = np.asarray(by["gradient"].samples_s) / np.asarray(by["forward"].samples_s)
            groups += intervals.split(r, by["gradient"].process_rounds)
        ci = intervals.process_median_ci(groups)
        assert len(groups) == 6
        assert (row.base_R, row.base_R_low, row.base_R_high) == pytest.approx((ci.value, ci.low, ci.high),
                                                                               rel=1e-12)
