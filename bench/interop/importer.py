"""pytest-benchmark JSON into bench records, every field checked (``bench import``).

A file is read only when it is a regular file or a pipe of at most
``MAX_BYTES``; a benchmark becomes a row only when it names a bench suite,
case, framework and phase, and its numbers are times: positive and finite
medians, whole positive rounds and iterations, raw samples (``stats.data``:
in ``--benchmark-json`` and ``bench export`` files, in ``--benchmark-save``
files only with ``--benchmark-save-data``) that agree with the median. Anything else is a
``UserError`` naming the benchmark and the field: a row stored as ``ok``
is a measurement, never a placeholder.

What the file holds is kept: R, FLOPs, memory, the cache policy and quality
that ``bench export`` writes into ``extra_info``, and the thread count that
``pytest suites/`` writes there. Where a file holds no R (pytest's own runs
time the phases in separate tests), it is computed from the forward and the
other phase of the same case: the ratio of their medians, with a bootstrap
interval when both have samples (``bench.stats.intervals``; their rounds are not
paired, so the per-round ratio bench's own runs use does not apply).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.core.cases import Case
from bench.core.errors import UserError
from bench.core.records import (
    FRAMEWORKS,
    PHASES,
    RATIO_RANGE,
    TIME_RANGE_S,
    CaseKey,
    Origin,
    Record,
    make,
)
from bench.interop.export import EXTRA_NUMBERS, EXTRA_TEXTS
from bench.stats import intervals, quality

# Larger files are refused (a JSON document in memory takes several times its size).
MAX_BYTES = 256 * 2**20
# Relative disagreement tolerated between stats.median and the median of stats.data
# (pytest-benchmark computes the one from the other; only rounding may differ).
MEDIAN_TOLERANCE = 1e-6
# The values each text of EXTRA_TEXTS may take ("" for unset), where they are a closed set.
ALLOWED_TEXTS = {"l2": ("warm", "flush"), "quality": ("", *quality.LEVELS)}
# extra_info numbers that are times or sizes of the same sign as a time: R and its bounds.
POSITIVE_EXTRAS = ("ratio", "ratio_ci_low", "ratio_ci_high")
# Times and ratios the store would refuse to read back (records.TIME_RANGE_S, RATIO_RANGE) are
# refused here, with the benchmark named; counts beyond this (rounds, iterations, threads) no
# real run's.
MAX_COUNT = 2**40


def check_source(path: Path, limit: int = MAX_BYTES) -> os.stat_result:
    """What ``path`` is, refused unless a regular file of at most ``limit`` bytes or a pipe."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path} is a folder: give a pytest-benchmark JSON file")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        raise UserError(f"{path} is not a regular file (a device or a socket): "
                        "give a pytest-benchmark JSON file")
    if stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise UserError(_too_big(path, limit))
    return info


def _too_big(path: Path, limit: int) -> str:
    return (f"{path} holds more than the {limit / 2**20:g} MiB bench import reads: "
            "is it a pytest-benchmark file?")


def read_document(path: Path, limit: int = MAX_BYTES) -> dict[str, Any]:
    """The JSON object in ``path``, a regular file or a pipe of at most ``limit`` bytes."""
    check_source(path, limit)
    too_big = _too_big(path, limit)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from exc
    if len(raw) > limit:
        raise UserError(too_big)
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a pytest-benchmark file") from None
    except ValueError as exc:  # also UnicodeDecodeError, and integers too long to convert
        raise UserError(f"{path} is not JSON ({_line(exc)})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} is not a pytest-benchmark file (a JSON {_kind(doc)}, not an object)")
    if "benchmarks" not in doc:
        raise UserError(f"{path} is not a pytest-benchmark file (no 'benchmarks')")
    return doc


@dataclasses.dataclass(frozen=True)
class Imported:
    """The rows of one pytest-benchmark document, the names it could not place, and what the
    benchmarks agree on (for the run's metadata)."""

    records: tuple[Record, ...]
    skipped: tuple[str, ...]
    processor: str
    threads: int | None


def records(doc: dict[str, Any], run_id: str, machine: str) -> Imported:
    """bench records from a pytest-benchmark document (``read_document``), every field checked.

    A benchmark is placed when its group is ``suite:phase`` and its
    ``extra_info`` or ``params`` name the case and framework: those written by
    ``bench export`` or by ``pytest suites/ --benchmark-only``; others are
    skipped by name. A placed benchmark with a field of the wrong type or a
    number that is not a time is a ``UserError``.
    """
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise UserError(f"'benchmarks' is a JSON {_kind(benchmarks)}, not a list: "
                        "not a pytest-benchmark file")
    stamp = doc.get("datetime")
    if not isinstance(stamp, str):
        stamp = ""
    out: list[Record] = []
    skipped: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    for i, b in enumerate(benchmarks, start=1):
        if not isinstance(b, dict):
            raise UserError(f"benchmark {i} is a JSON {_kind(b)}, not an object: not a pytest-benchmark file")
        name = b.get("name")
        if not isinstance(name, str):
            name = f"#{i}"
        where = f"benchmark {i} ({_short(name)})"
        r = _record(b, where, run_id, machine, stamp)
        if r is None:
            skipped.append(_short(name))
            continue
        key = (*CaseKey.of(r), r.phase)
        if key in seen:
            raise UserError(f"{where} times the same case and phase as {seen[key]}: a benchmark twice "
                            "(merge of two files?); import them separately")
        seen[key] = where
        out.append(r)
    threads = {r.threads for r in out}
    machine_info = doc.get("machine_info")
    processor = machine_info.get("processor") if isinstance(machine_info, dict) else None
    return Imported(tuple(with_ratios(out)), tuple(skipped), processor if isinstance(processor, str) else "",
                    threads.pop() if len(threads) == 1 and 0 not in threads else None)


def _record(b: dict[str, Any], where: str, run_id: str, machine: str, stamp: str) -> Record | None:
    """One benchmark as a Record, None when it names no bench case."""
    group = b.get("group")
    suite, _, phase = group.partition(":") if isinstance(group, str) else ("", "", "")
    extra = _object(b, "extra_info", where)
    params = _object(b, "params", where)
    # extra_info first: pytest suites/ writes the case id there, and the
    # parametrize objects (unserializable) into params.
    info = {**params, **extra}
    if not suite or phase not in PHASES or "case" not in info or "framework" not in info:
        return None
    case, framework = _text(info, "case", where), _text(info, "framework", where)
    mode, device = _text(info, "mode", where, ""), _text(info, "device", where, "cpu")
    if framework not in FRAMEWORKS:
        raise UserError(f"{where}: framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    if not case:
        raise UserError(f"{where}: the case is empty")
    st = b.get("stats")
    if not isinstance(st, dict):
        found = "missing" if "stats" not in b else f"a JSON {_kind(st)}"
        raise UserError(f"{where}: stats is {found}, not an object with the timings")
    timing = _timing(st, where)
    origin = Origin(run_id, machine, framework, "", mode, device)
    return make(
        origin, Case.from_id(suite, case), phase, "ok",
        reason="imported from pytest-benchmark" + ("" if timing["samples_s"] else " (no raw samples)"),
        timestamp=stamp, threads=_threads(extra, where), **timing,
        **_extras(extra, where, timing["median_s"]),
    )


def _timing(st: dict[str, Any], where: str) -> dict[str, Any]:
    """median_s, iqr_s, min_s, the CI, rounds, calls_per_block and samples_s of one stats object."""
    median = _seconds(st.get("median"), f"{where}: stats.median", present="median" in st)
    rounds = _count(st.get("rounds"), f"{where}: stats.rounds", present="rounds" in st)
    iterations = _count(st.get("iterations", 1), f"{where}: stats.iterations", present=True)
    iqr = _number(st.get("iqr"), f"{where}: stats.iqr", optional=True)
    if iqr < 0:
        raise UserError(f"{where}: stats.iqr {iqr!r} is negative")
    low = _seconds(st.get("min"), f"{where}: stats.min", optional=True)
    data = st.get("data")
    samples: tuple[float, ...] = ()
    if data is not None and data != []:
        if not isinstance(data, list):
            raise UserError(f"{where}: stats.data is a JSON {_kind(data)}, not a list of seconds")
        samples = tuple(_seconds(x, f"{where}: stats.data[{k}]") for k, x in enumerate(data))
        if len(samples) != rounds:
            raise UserError(f"{where}: stats.rounds {rounds} but stats.data holds {len(samples)} rounds")
        of_data = intervals.median(samples)
        if abs(of_data - median) > MEDIAN_TOLERANCE * of_data:
            raise UserError(f"{where}: stats.median {median:g} disagrees with the median of stats.data "
                            f"({of_data:g}): fix the file, or delete stats.data to import the median alone")
        iqr, low = intervals.iqr(samples), min(samples)
    ci = intervals.median_ci(samples) if samples else intervals.Interval(median, math.nan, math.nan)
    return {"median_s": median, "iqr_s": iqr, "min_s": low, "ci_low_s": ci.low, "ci_high_s": ci.high,
            "rounds": rounds, "calls_per_block": iterations, "samples_s": samples}


def _extras(extra: dict[str, Any], where: str, median: float) -> dict[str, Any]:
    """The EXTRA_NUMBERS and EXTRA_TEXTS that ``bench export`` wrote into extra_info, checked."""
    out: dict[str, Any] = {}
    for col in EXTRA_NUMBERS:
        if col in extra:
            ratio = col in POSITIVE_EXTRAS
            out[col] = _number(extra[col], f"{where}: extra_info.{col}", positive=ratio,
                               least=RATIO_RANGE[0] if col == "ratio" else 0.0,
                               most=RATIO_RANGE[1] if ratio else math.inf)
    for col in EXTRA_TEXTS:
        if col not in extra:
            continue
        value = extra[col]
        allowed = ALLOWED_TEXTS.get(col)
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            expected = f"one of {', '.join(repr(a) for a in allowed)}" if allowed else "a text"
            raise UserError(f"{where}: extra_info.{col} {_short(repr(value))} is not {expected}")
        out[col] = value
    if "flops" in out and "flops_per_s" not in out and math.isfinite(out["flops"] / median):
        out["flops_per_s"] = out["flops"] / median
    return out


def _threads(extra: dict[str, Any], where: str) -> int:
    if "threads" not in extra:
        return 0
    return _count(extra["threads"], f"{where}: extra_info.threads", present=True)


def with_ratios(rows: Sequence[Record]) -> list[Record]:
    """The rows, each phase's ratio to the forward pass of its case filled in where the file held none.

    Times from a pytest-benchmark file come from separate tests, whose rounds
    do not pair: the ratio is one of medians, with a bootstrap interval of
    independent samples when both rows have them (``intervals.ratio_of_medians``).
    """
    forward = {CaseKey.of(r): r for r in rows if r.phase == "forward"}
    out = []
    for r in rows:
        f = forward.get(CaseKey.of(r))
        if f is None or r.phase == "forward" or math.isfinite(r.ratio):
            out.append(r)
            continue
        if r.samples_s and f.samples_s:
            ci = intervals.ratio_of_medians(r.samples_s, f.samples_s)
        else:
            ci = intervals.Interval(r.median_s / f.median_s, math.nan, math.nan)
        if math.isfinite(ci.value):  # two extreme medians may overflow: no ratio then
            r = dataclasses.replace(r, ratio=ci.value, ratio_ci_low=ci.low, ratio_ci_high=ci.high)
        out.append(r)
    return out


# Field checks -----------------------------------------------------------------------------


def _object(b: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = b.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key} is a JSON {_kind(value)}, not an object")
    return value


def _text(info: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = info.get(key, default)
    if not isinstance(value, str):
        raise UserError(f"{where}: {key} {_short(repr(value))} is not a text")
    return value


def _number(value: Any, what: str, positive: bool = False, optional: bool = False,
            present: bool = True, least: float = 0.0, most: float = math.inf) -> float:
    """A finite JSON number (positive, from ``least`` up to ``most``, when asked); NaN for an absent
    optional one."""
    if optional and value is None:
        return math.nan
    if not present:
        raise UserError(f"{what} is missing: every benchmark needs its timing")
    x = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            x = float(value)
        except OverflowError:  # an integer beyond any float
            x = math.inf
    if not math.isfinite(x) or (positive and not (x > 0 and least <= x <= most)):
        need = "a finite number"
        if positive:
            need = f"a number from {least:g} to {most:g}" if least else f"a positive number up to {most:g}"
        raise UserError(f"{what} {_short(repr(value))} is not {need}")
    return x


def _seconds(value: Any, what: str, optional: bool = False, present: bool = True) -> float:
    return _number(value, what, positive=True, optional=optional, present=present,
                   least=TIME_RANGE_S[0], most=TIME_RANGE_S[1])


def _count(value: Any, what: str, present: bool) -> int:
    """A whole JSON number from 1 to MAX_COUNT (2.0 counts as 2)."""
    if not present:
        raise UserError(f"{what} is missing: every benchmark needs its timing")
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())
    if not whole or not 1 <= value <= MAX_COUNT:
        raise UserError(f"{what} {_short(repr(value))} is not a whole number from 1 to {MAX_COUNT:,}")
    return int(value)


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "text", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _short(text: str, limit: int = 60) -> str:
    """One line of at most ``limit`` characters (data goes into a one-line message)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _line(exc: BaseException) -> str:
    return _short(str(exc), 200)
