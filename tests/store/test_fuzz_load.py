"""Property-based fuzzing of the readers (issue #9): generated results files and metadata fed to
``bench.load`` and ``bench report``.

The files are valid Parquet holding bench's table with damage drawn by hypothesis: cells set to
extreme or non-finite numbers, text or nulls; columns of another type, dropped or foreign; samples
that are not times; rows cut; and metadata of any JSON shape, nested up to 100,000 deep, or bytes
that are not JSON. The only allowed outcomes: a result, a skip with a message, or a one-line error
(exit 2). Never a traceback, never an ``ok`` row with a non-finite or non-positive time.

The default suite runs a bounded number of examples; the ``slow`` variants run many more.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import bench
from bench.cli import main as cli
from bench.core.errors import UserError
from bench.core.records import PHASES, Record
from bench.store import schema

RUN = "20260101T000000Z-fuzz"
TYPES = {f.name: f.type for f in fields(Record)}
EXTREME = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 5e-324, 1e-300, 1e-13, 1e-12, 1e7, 1e8, 1e300,
           1.7976931348623157e308, -1e300, 2.0**63, 1.0, 0.5]


def base_rows() -> list[dict[str, Any]]:
    """Two cases of a plausible run: every phase ok, and one error row."""
    rows = []
    for i, n in enumerate((1, 2)):
        t_f = 0.001 * n
        for phase, t in (("forward", t_f), ("gradient", 2 * t_f), ("backward", t_f), ("step", 2.2 * t_f)):
            rows.append(Record(
                run_id=RUN, machine="box", suite="s", case=f"n={n}", params=json.dumps({"n": n}),
                framework="torch", framework_version="2", mode="eager", device="cpu" if i else "cuda:0",
                phase=phase, status="ok", median_s=t, iqr_s=t / 10, min_s=t * 0.9, ci_low_s=t * 0.95,
                ci_high_s=t * 1.05, rounds=3, samples_s=(t * 0.99, t, t * 1.01), process_rounds=(1, 2),
                ratio=t / t_f, ratio_ci_low=t / t_f * 0.9, ratio_ci_high=t / t_f * 1.1, flops=1e6 * t / t_f,
                flops_per_s=1e6 / t_f, theory_ratio=t / t_f, first_call_s=0.1, saved_bytes=1e3,
                peak_bytes=2e3, memory_ratio=1.5, loss_curve=(1.0, 0.5) if phase == "step" else (),
                quality="good").to_dict())
    rows.append(Record(run_id=RUN, machine="box", suite="s", case="n=3", params="{}", framework="torch",
                       framework_version="2", mode="eager", device="cpu", phase="gradient", status="error",
                       reason="boom").to_dict())
    return rows


numbers = st.one_of(st.sampled_from(EXTREME), st.floats(), st.integers(-(2**70), 2**70))
texts = st.one_of(st.sampled_from([*PHASES, "ok", "error", "", "fast", "[/x]", "=1+1"]), st.text(max_size=8))
cells = st.one_of(numbers, texts, st.none(), st.booleans(), st.lists(numbers, max_size=4))
column_names = st.sampled_from(list(TYPES))

operations = st.lists(st.one_of(
    st.tuples(st.just("set"), st.integers(0, 8), column_names, cells),
    st.tuples(st.just("samples"), st.integers(0, 8), st.one_of(st.none(), st.lists(numbers, max_size=5))),
    st.tuples(st.just("retype"), column_names,
              st.sampled_from(["string", "int", "float", "bool", "null", "list", "struct", "dictionary"])),
    st.tuples(st.just("drop"), column_names),
    st.tuples(st.just("extra"), st.text(max_size=6)),
    st.tuples(st.just("rows"), st.integers(0, 9)),
), max_size=6)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                      st.text(max_size=6))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=12)
KNOWN_KEYS = ["format_version", "run_id", "machine", "started", "finished", "interrupted", "fingerprint",
              "settings", "frameworks", "devices", "suites", "quality"]


def _metadata(base: dict[str, Any], changes: dict[str, Any], dropped: list[str]) -> bytes:
    meta = {**base, **changes}
    for key in dropped:
        meta.pop(key, None)
    return json.dumps(meta).encode()


GOOD_META = {"format_version": 2, "run_id": RUN, "machine": "box", "started": "2026-01-01T00:00:00+00:00",
             "finished": None, "fingerprint": {"cpu": "Fake [/x] <b>"}, "settings": {"threads": 1},
             "devices": ["cpu"], "suites": ["s"],
             "frameworks": {"torch@cpu": {"version": "2", "settings": {"threads": 1}}}}

raw_metadata = st.one_of(
    st.just(json.dumps(GOOD_META).encode()),
    st.builds(_metadata, st.just(GOOD_META),
              st.dictionaries(st.sampled_from(KNOWN_KEYS), json_value, max_size=3),
              st.lists(st.sampled_from(KNOWN_KEYS), max_size=2)),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3_000).map(lambda n: b'{"format_version": 2, "settings": ' + b'{"a": ' * n + b"1"
                              + b"}" * n + b"}"),
    st.binary(max_size=20),
    st.none(),  # no bench metadata at all
)
# Half the files carry good metadata, so that the damage to the table is read, not refused early.
metadata = st.one_of(st.just(json.dumps(GOOD_META).encode()), raw_metadata)


def _column(name: str, values: list[Any], kind: str | None) -> pa.Array:
    want = schema.SCHEMA.field(name).type if name in TYPES else pa.string()
    if kind is None:
        try:
            return pa.array(values, type=want)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            kind = "string"
    if kind == "string":
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if kind == "null":
        return pa.nulls(len(values))
    if kind == "struct":
        return pa.array([{"v": str(v)} for v in values])
    if kind == "dictionary":
        return pa.array([str(v) for v in values]).dictionary_encode()
    if kind == "list":
        return pa.array([[str(v)] for v in values], pa.list_(pa.string()))
    target = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}[kind]
    try:
        return pa.array(values, type=want).cast(target, safe=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.nulls(len(values), target)


def build_file(path: Path, ops: list[tuple], raw: bytes | None) -> None:
    rows = base_rows()
    kinds: dict[str, str | None] = {name: None for name in TYPES}
    for op in ops:
        if op[0] == "set" and op[1] < len(rows):
            rows[op[1]][op[2]] = op[3]
        elif op[0] == "samples" and op[1] < len(rows):
            rows[op[1]]["samples_s"] = op[2]
        elif op[0] == "retype" and op[1] in kinds:
            kinds[op[1]] = op[2]
        elif op[0] == "drop":
            kinds.pop(op[1], None)
        elif op[0] == "extra" and op[1] not in kinds:
            kinds[op[1]] = "string"
        elif op[0] == "rows":
            rows = rows[:op[1]]
    arrays = {name: _column(name, [r.get(name, "x") for r in rows], kind) for name, kind in kinds.items()}
    table = pa.table(arrays)
    if raw is not None:
        table = table.replace_schema_metadata({schema.METADATA_KEY: raw})
    try:
        pq.write_table(table, path)
    except (pa.ArrowException, ValueError, TypeError):
        assume(False)  # a table Parquet itself cannot hold is not a file anyone has


def check_rows(df: Any) -> None:
    """What every loaded table promises: every column, and ok rows whose times are times."""
    assert set(TYPES) <= set(df.columns)
    ok = df[df["status"] == "ok"]
    med = ok["median_s"].to_numpy(float)
    assert np.isfinite(med).all(), ok["median_s"]
    timed = (ok["phase"] != "backward").to_numpy()
    assert (med[timed] > 0).all(), ok["median_s"]
    for phase, samples in zip(ok["phase"], ok["samples_s"], strict=True):
        s = np.asarray(samples, dtype=float)
        assert np.isfinite(s).all() and (phase == "backward" or (s > 0).all()), samples
    assert set(df["phase"]) <= set(PHASES)


def check_one_line(exc: UserError) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 1000, text


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
MANY = settings(FUZZ, max_examples=600)


def _load_one(ops: list[tuple], raw: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()) as err:
        path = Path(tmp) / "box" / f"{RUN}.parquet"
        path.parent.mkdir()
        build_file(path, ops, raw)
        try:
            df = bench.load(path)
        except UserError as exc:
            check_one_line(exc)
            event("refused")
            return
        check_rows(df)
        event("read, rows left out" if err.getvalue() else "read")
        for line in err.getvalue().splitlines():
            assert line.startswith("bench: warning: ") and str(path) in line, line


def _load_folder(ops: list[tuple], raw: bytes | None) -> None:
    """A damaged file beside a good one: the good one always loads, the other is read or skipped."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()) as err:
        good = Path(tmp) / "box" / "good.parquet"
        good.parent.mkdir()
        build_file(good, [], json.dumps({**GOOD_META, "run_id": "good"}).encode())
        build_file(Path(tmp) / "box" / "zz-fuzzed.parquet", ops, raw)
        df = bench.load(Path(tmp))
        check_rows(df)
        event("skipped" if "skipping" in err.getvalue() else "read")
        assert len(df) >= len(base_rows())
        for line in err.getvalue().splitlines():
            assert line.startswith(("bench: skipping ", "bench: warning: ")) and "zz-fuzzed" in line, line


def _report(ops: list[tuple], raw: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()) as err, \
            contextlib.redirect_stdout(io.StringIO()):
        path = Path(tmp) / "box" / f"{RUN}.parquet"
        path.parent.mkdir()
        build_file(path, ops, raw)
        out = Path(tmp) / "r.html"
        code = cli.main(["report", str(path), "-o", str(out)])
        lines = err.getvalue().splitlines()
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("bench: error: "), lines
            assert not out.exists()
            event("refused")
        else:
            event("page, rows left out" if lines else "page")
            assert code == 0, (code, lines)
            assert out.read_text().startswith("<!doctype html>")
            assert all(ln.startswith("bench: warning: ") for ln in lines), lines


@FUZZ
@given(operations, metadata)
def test_load_gives_rows_or_one_line(ops, raw):
    _load_one(ops, raw)


@FUZZ
@given(operations, metadata)
def test_a_damaged_file_in_a_folder_is_read_or_skipped(ops, raw):
    _load_folder(ops, raw)


@settings(FUZZ, max_examples=15)
@given(operations, metadata)
def test_report_gives_a_page_or_one_line(ops, raw):
    _report(ops, raw)


@pytest.mark.slow
@MANY
@given(operations, metadata)
def test_load_gives_rows_or_one_line_many(ops, raw):
    _load_one(ops, raw)


@pytest.mark.slow
@MANY
@given(operations, metadata)
def test_a_damaged_file_in_a_folder_is_read_or_skipped_many(ops, raw):
    _load_folder(ops, raw)


@pytest.mark.slow
@settings(FUZZ, max_examples=200)
@given(operations, metadata)
def test_report_gives_a_page_or_one_line_many(ops, raw):
    _report(ops, raw)
