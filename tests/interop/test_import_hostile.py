"""``bench import`` on hostile or broken pytest-benchmark JSON: one line, exit 2, nothing stored.

Issue #9 item 12 (wrong types, missing keys, meaningless numbers, deep
nesting, endless input) and item 13 (``--results`` onto a file). The
variants run in-process through ``bench.cli.main`` (the console script's
function) for speed; the endless and the deeply nested input also go through
the installed script.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import bench_cli

from bench.cli import main as cli
from bench.core.errors import UserError


def stats(median: float, rounds: int = 5, data: bool = True) -> dict[str, Any]:
    """pytest-benchmark's stats of ``rounds`` samples spread 1 % apart around ``median``."""
    samples = [median * (1 + 0.01 * (i - rounds // 2)) for i in range(rounds)]
    out: dict[str, Any] = {"min": min(samples), "max": max(samples), "mean": median, "stddev": 0.01 * median,
                           "median": median, "iqr": 0.02 * median, "q1": 0.99 * median, "q3": 1.01 * median,
                           "rounds": rounds, "iterations": 1, "ops": 1 / median, "total": median * rounds}
    if data:
        out["data"] = samples
    return out


def benchmark(phase: str = "forward", median: float = 1e-3, case: str = "batch=8", **stat_kw) -> dict:
    """One benchmark as ``bench export --format pytest-benchmark`` writes it."""
    param = f"{case}-jax-jit-cpu-{phase}"
    return {"group": f"s:{phase}", "name": f"s[{param}]", "fullname": f"bench::s[{param}]",
            "params": {"case": case, "framework": "jax", "mode": "jit", "device": "cpu", "phase": phase},
            "param": param, "extra_info": {"calls_per_block": 1}, "stats": stats(median, **stat_kw)}


def document(*benchmarks: dict) -> dict:
    return {"machine_info": {"processor": "Fake CPU"}, "commit_info": {}, "datetime": "2026-11-26T00:00:00",
            "version": "5.1.0",
            "benchmarks": list(benchmarks) or [benchmark("forward"), benchmark("gradient", 2.5e-3)]}


def run_import(tmp_path: Path, capsys, content: Any, raw: bool = False, *extra: str) -> tuple[int, str, str]:
    """``bench import`` of ``content`` (a document, or text when ``raw``) into tmp_path/r."""
    path = tmp_path / "in.json"
    if raw:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    else:
        path.write_text(json.dumps(content))
    code = cli.main(["import", str(path), "--machine", "m", "--results", str(tmp_path / "r"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]


def with_field(path: str, value: Any, delete: bool = False) -> dict:
    """A good document with the field at ``path`` (dots; digits index lists) set to ``value``."""
    doc = document()
    *parents, last = path.split(".")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    key = int(last) if last.isdigit() else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return doc


NAN, INF = math.nan, math.inf

HOSTILE = [
    # The document and its list of benchmarks.
    ("null", None, ["not a pytest-benchmark file"]),
    ("list", [], ["not a pytest-benchmark file"]),
    ("string", "benchmarks", ["not a pytest-benchmark file"]),
    ("benchmarks-missing", with_field("benchmarks", None, delete=True), ["no 'benchmarks'"]),
    ("benchmarks-null", with_field("benchmarks", None), ["'benchmarks'", "list"]),
    ("benchmarks-dict", with_field("benchmarks", {"a": 1}), ["'benchmarks'", "list"]),
    ("benchmarks-string", with_field("benchmarks", "fast"), ["'benchmarks'", "list"]),
    ("benchmarks-empty", with_field("benchmarks", []), ["no benchmark"]),
    ("item-string", with_field("benchmarks.0", "s[a]"), ["benchmark 1", "not an object"]),
    ("item-null", with_field("benchmarks.1", None), ["benchmark 2", "not an object"]),
    # The fields that place a benchmark.
    ("params-list", with_field("benchmarks.0.params", [1, 2]), ["params", "object"]),
    ("extra-list", with_field("benchmarks.0.extra_info", ["a"]), ["extra_info", "object"]),
    ("case-list", with_field("benchmarks.0.params.case", [1]), ["case"]),
    ("framework-unknown", with_field("benchmarks.0.params.framework", "mxnet"), ["framework", "mxnet"]),
    ("mode-number", with_field("benchmarks.0.params.mode", 3), ["mode"]),
    ("duplicate", document(benchmark("forward"), benchmark("forward")), ["twice"]),
    # stats
    ("stats-missing", with_field("benchmarks.0.stats", None, delete=True), ["stats"]),
    ("stats-string", with_field("benchmarks.0.stats", "fast"), ["stats", "object"]),
    ("stats-null", with_field("benchmarks.0.stats", None), ["stats", "object"]),
    ("median-text", with_field("benchmarks.0.stats.median", "fast"), ["stats.median", "'fast'"]),
    ("median-missing", with_field("benchmarks.0.stats.median", None, delete=True), ["stats.median"]),
    ("median-bool", with_field("benchmarks.0.stats.median", True), ["stats.median"]),
    ("median-negative", with_field("benchmarks.0.stats.median", -1e-3), ["stats.median"]),
    ("median-zero", with_field("benchmarks.0.stats.median", 0), ["stats.median"]),
    ("median-nan", with_field("benchmarks.0.stats.median", NAN), ["stats.median"]),
    ("median-inf", with_field("benchmarks.0.stats.median", INF), ["stats.median"]),
    ("median-disagrees", with_field("benchmarks.0.stats.median", 1e-2), ["stats.median", "stats.data"]),
    ("rounds-text", with_field("benchmarks.0.stats.rounds", "many"), ["stats.rounds", "'many'"]),
    ("rounds-zero", with_field("benchmarks.0.stats.rounds", 0), ["stats.rounds"]),
    ("rounds-fraction", with_field("benchmarks.0.stats.rounds", 2.5), ["stats.rounds"]),
    ("rounds-disagree", with_field("benchmarks.0.stats.rounds", 7), ["stats.rounds", "stats.data"]),
    ("iterations-zero", with_field("benchmarks.0.stats.iterations", 0), ["stats.iterations"]),
    ("iterations-text", with_field("benchmarks.0.stats.iterations", "x"), ["stats.iterations"]),
    ("iqr-text", with_field("benchmarks.0.stats.iqr", "wide"), ["stats.iqr"]),
    ("min-negative", with_field("benchmarks.0.stats.min", -1.0), ["stats.min"]),
    ("data-string", with_field("benchmarks.0.stats.data", "1,2,3"), ["stats.data", "list"]),
    ("data-text", with_field("benchmarks.0.stats.data", ["a", "b", "c", "d", "e"]), ["stats.data"]),
    ("data-negative", with_field("benchmarks.0.stats.data", [1e-3, -1e-3, 1e-3, 1e-3, 1e-3]), ["stats.data"]),
    ("data-nan", with_field("benchmarks.0.stats.data", [1e-3, NAN, 1e-3, 1e-3, 1e-3]), ["stats.data"]),
    # What bench export puts in extra_info.
    ("ratio-text", with_field("benchmarks.1.extra_info.ratio", "2.5"), ["extra_info.ratio"]),
    ("ratio-nan", with_field("benchmarks.1.extra_info.ratio", NAN), ["extra_info.ratio"]),
    ("ratio-negative", with_field("benchmarks.1.extra_info.ratio", -2.5), ["extra_info.ratio"]),
    ("quality-unknown", with_field("benchmarks.1.extra_info.quality", "superb"), ["extra_info.quality"]),
    ("l2-unknown", with_field("benchmarks.1.extra_info.l2", "cold"), ["extra_info.l2"]),
    ("throttled-number", with_field("benchmarks.1.extra_info.throttled", 5), ["extra_info.throttled"]),
    ("threads-negative", with_field("benchmarks.1.extra_info.threads", -2), ["extra_info.threads"]),
]


@pytest.mark.parametrize(("doc", "words"), [pytest.param(d, w, id=i) for i, d, w in HOSTILE])
def test_hostile_documents_are_one_line_exit_2_and_store_nothing(tmp_path, capsys, doc, words):
    code, _, err = run_import(tmp_path, capsys, copy.deepcopy(doc))
    assert_one_line(code, err, *words)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("text", "words"), [
    pytest.param("", ["not JSON"], id="empty"),
    pytest.param("{not json", ["not JSON"], id="syntax"),
    pytest.param(b"\xff\xfe\x00garbage", ["not JSON"], id="binary"),
    pytest.param('{"benchmarks": [' + "[" * 50_000 + "]" * 50_000 + "]}", ["nested"], id="deep-50000"),
    pytest.param('{"benchmarks": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}", ["nested"],
                 id="deep-dict"),
    pytest.param('{"benchmarks": [1' + "0" * 10_000 + "]}", ["not JSON"], id="huge-integer"),
])
def test_unreadable_json_is_one_line_exit_2(tmp_path, capsys, text, words):
    code, _, err = run_import(tmp_path, capsys, text, True)
    assert_one_line(code, err, *words)
    assert not (tmp_path / "r").exists()


def test_a_good_document_still_imports(tmp_path, capsys):
    import bench

    code, out, err = run_import(tmp_path, capsys, document())
    assert code == 0, err
    assert "imported 2 benchmarks" in out
    df = bench.load(tmp_path / "r" / "m")
    assert (df.status == "ok").all() and (df.median_s > 0).all()
    assert set(df.rounds) == {5} and set(df.calls_per_block) == {1}


def test_a_foreign_benchmark_beside_bench_ones_is_skipped_with_a_message(tmp_path, capsys):
    foreign = {"group": None, "name": "test_sort", "params": None, "stats": stats(1e-3)}
    code, out, err = run_import(tmp_path, capsys, document(benchmark("forward"), foreign))
    assert code == 0, err
    assert "skipped (not a bench case): test_sort" in out and "imported 1 benchmarks" in out


def test_a_file_larger_than_the_cap_is_refused_without_reading_it(tmp_path, capsys):
    from bench.interop import importer

    big = tmp_path / "big.json"
    with open(big, "wb") as fh:  # sparse: nothing is written, nothing read
        fh.truncate(importer.MAX_BYTES + 1)
    code = cli.main(["import", str(big), "--machine", "m", "--results", str(tmp_path / "r")])
    assert_one_line(code, capsys.readouterr().err, "256 MiB")
    assert not (tmp_path / "r").exists()


def test_a_pipe_is_read_up_to_the_cap(tmp_path):
    import threading

    from bench.interop import importer

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:  # more than the (small) cap, then done; a pipe buffer holds it all
        with open(fifo, "wb") as fh:
            fh.write(b" " * 5000)

    # A thread, not a fork: forking a process that has imported JAX can deadlock.
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        with pytest.raises(UserError, match="more than"):
            importer.read_document(fifo, limit=1000)
    finally:
        writer.join(timeout=10)
    assert not writer.is_alive()


def test_dev_zero_and_a_folder_are_refused_at_once(tmp_path):
    for path, words in (("/dev/zero", "not a regular file"), ("/", "folder")):
        proc = bench_cli("import", path, "--machine", "m", "--results", str(tmp_path / "r"), timeout=60)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr


def test_deep_nesting_through_the_installed_script(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    proc = bench_cli("import", str(path), "--machine", "m", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_states_the_size_cap():
    proc = bench_cli("import", "--help")
    assert proc.returncode == 0 and "256 MiB" in proc.stdout


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_results_onto_a_file_is_refused_before_anything_is_read(tmp_path, capsys, where):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    results = afile if where == "file" else afile / "r"
    doc = tmp_path / "in.json"
    doc.write_text(json.dumps(document()))
    code = cli.main(["import", str(doc), "--machine", "m", "--results", str(results)])
    assert_one_line(code, capsys.readouterr().err, "--results")
    assert afile.read_text() == "keep me"


def test_the_machine_folder_being_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "m").write_text("keep me")
    code, _, err = run_import(tmp_path, capsys, document())
    assert_one_line(code, err, "m")
    assert (tmp_path / "r" / "m").read_text() == "keep me"
