"""Verdicts across runs: right on known shifts, rarely fooled by noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import compare


def noisy(rng: np.random.Generator, n: int = 30, scale: float = 1e-3) -> np.ndarray:
    """Timing-like samples: lognormal noise of about 5 % around ``scale``."""
    return scale * rng.lognormal(0.0, 0.05, size=n)


@pytest.mark.parametrize(("factor", "call"), [(0.8, "faster"), (1.25, "slower"), (0.5, "faster")])
def test_known_shifts_are_called(factor, call):
    for seed in range(10):
        rng = np.random.default_rng(seed)
        v = compare.verdict(noisy(rng), factor * noisy(rng))
        assert v.call == call
        assert v.speedup.value == pytest.approx(1 / factor, rel=0.05)


def test_a_significant_but_tiny_change_is_not_called():
    # 1 % faster with almost no noise: significant, but below the 5 % minimum effect.
    rng = np.random.default_rng(0)
    base = 1e-3 * rng.lognormal(0.0, 0.001, size=50)
    v = compare.verdict(base, base / 1.01)
    assert v.p_value < 0.05
    assert v.call == "no significant change"
    # The same change is called once the minimum effect is below it.
    assert compare.verdict(base, base / 1.01, min_effect=0.005).call == "faster"


def test_identical_distributions_are_rarely_called_changed():
    false_calls = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        # Noise wide enough that medians differ by more than 5 % now and then.
        base = 1e-3 * rng.lognormal(0.0, 0.2, size=15)
        new = 1e-3 * rng.lognormal(0.0, 0.2, size=15)
        false_calls += compare.verdict(base, new).call != "no significant change"
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
    table, unmatched = compare.compare(df, df)
    assert len(table) == 4  # 2 cases x (forward, gradient); the derived backward is left out
    assert (table.verdict == "no significant change").all()
    assert np.allclose(table.speedup, 1.0)
    assert unmatched.empty


def test_unmatched_cases_are_listed_not_dropped():
    base = rows({"a": 1e-3, "b": 2e-3})
    new = rows({"a": 0.5e-3, "c": 1e-3}, seed=1)
    table, unmatched = compare.compare(base, new)
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
    table, _ = compare.compare(base, new)
    t = table.set_index(["case", "phase"])
    assert t.loc[("a", "forward"), ["base_peak_bytes", "new_peak_bytes"]].tolist() == [1e6, 1.5e6]
    assert t.loc[("a", "forward"), "peak_bytes_ratio"] == pytest.approx(1.5)
    # gradient of b: 3 x 4 MB in base, 2 x 2 MB in new
    assert t.loc[("b", "gradient"), "peak_bytes_ratio"] == pytest.approx(4e6 / 12e6)
    assert t.loc[("b", "gradient"), ["base_memory_ratio", "new_memory_ratio"]].tolist() == [3.0, 2.0]
    assert t.loc[("b", "gradient"), "new_saved_bytes"] == 4e6
    assert compare.has_memory(table)


def test_memory_is_nan_where_a_side_did_not_measure_it():
    base = with_memory(rows({"a": 1e-3}), {"a": 1e6}, 3.0)
    table, _ = compare.compare(base, rows({"a": 1e-3}))  # no memory columns at all (an old file)
    assert table.new_peak_bytes.isna().all() and table.peak_bytes_ratio.isna().all()
    assert (table.base_peak_bytes > 0).all()
    assert not compare.has_memory(table)


def test_an_unreliable_side_makes_the_call_inconclusive():
    base = rows({"a": 1e-3, "b": 1e-3})
    new = rows({"a": 2e-3, "b": 2e-3}, seed=1)  # twice as slow: "slower" where both are trusted
    new["quality"] = np.where(new.case == "b", "unreliable", "good")
    table, _ = compare.compare(base, new)
    calls = table.set_index(["case", "phase"]).verdict
    assert calls["a", "gradient"] == "slower"
    assert calls["b", "gradient"] == calls["b", "forward"] == compare.INCONCLUSIVE
    noisy_only = new.assign(quality="noisy")
    assert (compare.compare(base, noisy_only)[0].verdict == "slower").all()  # noisy still calls
