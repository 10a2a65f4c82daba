"""Property-based fuzzing of ``bench import`` (issue #9): pytest-benchmark JSON with wrong types,
missing keys, extreme numbers and deep nesting.

The only outcomes allowed are a stored run (every ``ok`` row a positive,
finite time), or one line on stderr with exit code 2; never a traceback.
The documents run in-process through ``bench.cli.main``, the console
script's function, with a bounded number of examples.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bench
from bench.cli import main as cli
from bench.core.records import PHASES

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Numbers at the edges: zero, negatives, NaN, infinities, the largest and
# smallest floats, integers beyond any float, booleans (ints to Python).
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e-300, 5e-324, 1e308, 1.7976931348623157e308, 2**63, 10**400, True, False]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=1e-7, max_value=1e-1),  # plausible times, so that some documents import
)
junk = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


_ABSENT = object()


def corrupt(draw, obj: dict, keys: list[str], wrong: st.SearchStrategy) -> dict:
    """``obj`` with, now and then, one of ``keys`` replaced by a ``wrong`` value or removed."""
    for key in draw(st.lists(st.sampled_from(keys), max_size=1)):
        value = draw(st.one_of(wrong, st.just(_ABSENT)))
        if value is _ABSENT:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


@st.composite
def stats_objects(draw) -> dict[str, Any]:
    """pytest-benchmark's stats of some rounds, mostly consistent, now and then with wrong fields."""
    samples = draw(st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=1, max_size=6))
    out: dict[str, Any] = {"median": statistics.median(samples), "min": min(samples), "iqr": 0.0,
                           "rounds": len(samples), "iterations": draw(st.integers(min_value=1, max_value=4))}
    if draw(st.booleans()):
        out["data"] = samples
    return corrupt(draw, out, ["median", "min", "iqr", "rounds", "iterations", "data"], numbers | junk)


@st.composite
def benchmarks(draw) -> dict[str, Any]:
    """One benchmark of a bench case, now and then with wrong fields (or a foreign one)."""
    phase = draw(st.sampled_from(PHASES))
    info = {"case": draw(st.sampled_from(["a", "batch=8"])), "mode": "jit", "device": "cpu",
            "framework": draw(st.sampled_from(["jax", "torch"]))}
    extra = draw(st.fixed_dictionaries({}, optional={
        "ratio": st.floats(min_value=0.1, max_value=10), "flops": st.floats(min_value=0, max_value=1e15),
        "quality": st.sampled_from(["good", "noisy", "unreliable", ""]),
        "l2": st.sampled_from(["warm", "flush"]), "threads": st.integers(min_value=1, max_value=64)}))
    extra = corrupt(draw, extra, ["ratio", "flops", "quality", "l2", "threads", "case"], numbers | junk)
    b = {"group": f"s:{phase}", "name": f"s[{info['case']}-{phase}]", "params": info, "extra_info": extra,
         "stats": draw(stats_objects())}
    return corrupt(draw, b, ["group", "name", "params", "extra_info", "stats"], junk)


documents = st.one_of(
    st.fixed_dictionaries({"benchmarks": st.lists(benchmarks() | junk, max_size=5)},
                          optional={"machine_info": junk, "datetime": junk}),
    st.fixed_dictionaries({"benchmarks": junk}),
    junk,
)


def import_text(text: str | bytes) -> tuple[int, str, str, Path]:
    """``bench import`` of ``text`` in a fresh folder: (exit code, stdout, stderr, the run stored or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        results = Path(tmp) / "r"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["import", str(path), "--machine", "m", "--results", str(results)])
        stored = list(results.rglob("*.parquet"))
        if code == 0:
            assert len(stored) == 1, out.getvalue()
            check_stored(stored[0])
        else:
            assert not stored
        return code, out.getvalue(), err.getvalue(), path


def check_stored(path: Path) -> None:
    """Every row of an imported run is ok and a time: positive and finite, whole rounds."""
    df = bench.load(path)
    assert len(df) and (df.status == "ok").all()
    for r in df.itertuples():
        assert math.isfinite(r.median_s) and r.median_s > 0, r
        assert r.rounds >= 1 and r.calls_per_block >= 1, r
        assert all(math.isfinite(s) and s > 0 for s in r.samples_s), r
        assert math.isnan(r.min_s) or (math.isfinite(r.min_s) and r.min_s > 0), r
        assert math.isnan(r.ratio) or (math.isfinite(r.ratio) and r.ratio > 0), r


def check_outcome(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


@FUZZ
@given(documents)
def test_any_json_document_imports_or_is_one_line(doc):
    code, _, err, _ = import_text(json.dumps(doc))
    check_outcome(code, err)


@FUZZ
@given(st.lists(benchmarks(), min_size=1, max_size=4))
# Found by hypothesis: an R the importer took and the store then refused to read back.
@example([{"group": "s:forward", "name": "s[a-forward]",
           "params": {"case": "a", "mode": "jit", "device": "cpu", "framework": "jax"},
           "extra_info": {"ratio": 1000001.0},
           "stats": {"median": 1.0, "min": 1.0, "iqr": 0.0, "rounds": 1, "iterations": 1}}])
def test_benchmarks_of_bench_cases_import_or_are_one_line(benchmarks):
    code, _, err, _ = import_text(json.dumps({"benchmarks": benchmarks}))
    check_outcome(code, err)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=200_000), st.booleans(),
       st.sampled_from(["benchmarks", "extra_info", "stats", "median", "top"]))
def test_deep_nesting_anywhere_is_one_line(depth, lists, where):
    nested = "[" * depth + "]" * depth if lists else '{"a": ' * depth + "1" + "}" * depth
    good = {"group": "s:forward", "params": {"case": "a", "framework": "jax"},
            "extra_info": {"k": 1}, "stats": {"median": 1e-3, "rounds": 1, "iterations": 1}}
    text = json.dumps({"benchmarks": [good]})
    target = {"benchmarks": '"benchmarks": [', "extra_info": '"extra_info": {',
              "stats": '"stats": {', "median": '"median": '}.get(where)
    if where == "top":
        text = nested
    elif where == "median":
        text = text.replace('"median": 1e-3', f'"median": {nested}')
    else:
        inserted = f"{nested}, " if where == "benchmarks" else f'"x": {nested}, '
        text = text.replace(target, target + inserted)
    code, _, err, _ = import_text(text)
    check_outcome(code, err)


@FUZZ
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_bytes_that_are_not_a_document_are_one_line(data):
    code, _, err, _ = import_text(data)
    check_outcome(code, err)
