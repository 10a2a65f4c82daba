"""Property-based fuzzing of ``bench compare`` and ``bench export`` (issue #9): pairs of results
files whose rows hold extreme numbers, missing samples, odd statuses and texts with markup or
formulas, and whose metadata holds wrong types.

The only outcomes allowed: a result (exit 0, or 1 for ``--fail-on-regression``),
or one line on stderr with exit code 2; never a traceback. The files are
written with bench's own writer and run in-process through
``bench.cli.main``, with a bounded number of examples.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main as cli
from bench.core.records import PHASES, STATUSES, Record
from bench.store.writer import ResultsWriter

# Each example writes three files and compares them in full: 20 keep the test at a few seconds.
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

extreme = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1e-3, math.nan, math.inf, 5e-324, 1.7976931348623157e308]),
)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` seven times in eight, so that many examples get as far as a comparison."""
    return st.integers(min_value=0, max_value=7).flatmap(lambda i: bad if i == 0 else good)


valid_times = st.floats(min_value=1e-4, max_value=1e-2)
times = mostly(valid_times, extreme)
texts = st.one_of(st.sampled_from(["a", "b", "a[/x]", "[bold]b", "=1+1", "@SUM(A1)", "-2", "x|y"]),
                  st.text(max_size=6))
# Few cases and phases, so that the runs of a pair share some.
cases = mostly(st.sampled_from(["a", "a[/x]", "=1+1"]), texts)


@st.composite
def records(draw, run_id: str) -> list[Record]:
    """A run: a few cases, each with some phases, a number now and then at an edge."""
    out = []
    suite = draw(mostly(st.just("s"), st.just("[/]")))
    for case in draw(st.lists(cases, min_size=1, max_size=3, unique=True)):
        phases = mostly(st.sampled_from(["forward", "gradient"]), st.sampled_from(PHASES))
        for phase in draw(st.lists(phases, min_size=1, max_size=3, unique=True)):
            samples = draw(mostly(st.lists(valid_times, min_size=3, max_size=8), st.lists(times, max_size=8)))
            out.append(Record(
                run_id=run_id, machine="m", suite=suite, case=case, params="{}",
                framework="jax", framework_version="0", mode="jit", device="cpu", phase=phase,
                status=draw(mostly(st.just("ok"), st.sampled_from(STATUSES))),
                median_s=float(np.median(samples)) if samples and draw(st.booleans()) else draw(times),
                samples_s=tuple(samples), ratio=draw(mostly(st.floats(0.5, 5.0), extreme)),
                calls_per_block=draw(st.sampled_from([0, 1, 7])),
                peak_bytes=draw(mostly(st.just(1e6), extreme)),
                quality=draw(st.sampled_from(["", "good", "noisy", "unreliable"])), reason=draw(texts)))
    return out


metadata = st.fixed_dictionaries({}, optional={
    "fingerprint": mostly(st.dictionaries(st.sampled_from(["cpu", "arch"]), texts),
                          st.one_of(st.lists(texts), texts, st.none())),
    "settings": mostly(st.dictionaries(st.sampled_from(["threads", "l2"]), st.integers() | texts),
                       st.one_of(st.none(), texts)),
    "frameworks": mostly(st.dictionaries(st.just("jax"), st.dictionaries(st.just("version"), texts)),
                         st.lists(texts)),
})


def write(path: Path, rows: list[Record], meta: dict) -> Path:
    w = ResultsWriter(path, {**meta, "run_id": path.stem, "machine": "m"})
    w.append(rows)
    w.close()
    return path


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def strict(constant: str) -> None:
    raise AssertionError(f"{constant} in a JSON file")


def check(code: int, err: str, allowed: tuple[int, ...]) -> None:
    """No traceback; exit 2 is one error line, after any one-line messages (files or rows skipped)."""
    assert "Traceback" not in err, err
    assert code in allowed, (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert lines[-1].startswith("bench: error: "), err
        assert all(li.startswith("bench: ") and "error" not in li[:14] for li in lines[:-1]), err


@FUZZ
@given(records("r1"), records("r2"), records("r3"), metadata, metadata,
       st.sampled_from([[], ["--fail-on-regression", "5%"], ["--run", "pool"], ["--run", "r1"]]))
def test_compare_of_any_results_is_a_result_or_one_line(base, other, new, base_meta, new_meta, options):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "A"
        write(folder / "r1.parquet", base, base_meta)
        write(folder / "r2.parquet", other, new_meta)
        b = write(Path(tmp) / "B" / "r3.parquet", new, new_meta)
        code, _, err = run("compare", str(folder), str(b), *options)
        check(code, err, (0, 1, 2))


@FUZZ
@given(records("r1"), metadata, st.sampled_from(["csv", "markdown", "pytest-benchmark"]))
def test_export_of_any_results_is_a_result_or_one_line(rows, meta, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "m" / "r1.parquet", rows, meta)
        out = Path(tmp) / "out" / "x.txt"
        code, _, err = run("export", str(path), "--format", fmt, "-o", str(out))
        check(code, err, (0, 2))
        if code == 0 and fmt == "pytest-benchmark":
            doc = json.loads(out.read_text(), parse_constant=strict)  # no NaN: every benchmark a time
            for b in doc["benchmarks"]:
                assert b["stats"]["median"] > 0 and all(x > 0 for x in b["stats"]["data"])
        if code == 0 and fmt == "csv":
            cells = [c for row in csv.reader(io.StringIO(out.read_text())) for c in row]
            assert not any(c.startswith(("=", "@")) for c in cells)  # + and - also start numbers
