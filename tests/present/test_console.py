"""bench.present.console: the run summary says how far its intervals reach."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from bench.core.records import Record
from bench.present import console

BASE = dict(run_id="r", machine="m", suite="s", case="c", params="{}", framework="torch",
            framework_version="1", mode="eager", device="cpu", status="ok", quality="good")


def rows(process_rounds: tuple[int, ...]) -> list[Record]:
    n = sum(process_rounds) or 5
    return [
        Record(phase="forward", median_s=1e-3, samples_s=(1e-3,) * n, process_rounds=process_rounds, **BASE),
        Record(phase="gradient", median_s=2.5e-3, ratio=2.5, ratio_ci_low=2.4, ratio_ci_high=2.6,
               samples_s=(2.5e-3,) * n, process_rounds=process_rounds, **BASE),
    ]


def printed(records: list[Record]) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200).print(console.summary(records))
    return buf.getvalue()


def test_one_process_per_case_says_its_intervals_hold_its_rounds_only():
    text = printed(rows(()))
    assert "one worker process per case" in text and "--processes 3" in text


def test_several_processes_per_case_need_no_such_caveat():
    text = printed(rows((5, 5, 5)))
    assert "R = T(gradient) / T(forward)" in text
    assert "one worker process per case" not in text


def run_rows() -> list[Record]:
    """Three frameworks on one suite, one row noisy and one failed."""
    out = []
    for fw, mode in (("torch", "eager"), ("tensorflow", "function"), ("jax", "jit")):
        for batch in (64, 1024):
            base = {**BASE, "framework": fw, "mode": mode, "suite": "mlp_regression",
                    "case": f"batch={batch},width=512,depth=2"}
            status = "failed" if (fw, batch) == ("jax", 1024) else "ok"
            quality = "noisy" if (fw, batch) == ("tensorflow", 64) else "good"
            kw = {"status": status, "quality": quality if status == "ok" else "",
                  "quality_reason": "R CI half-width 18 %" if quality == "noisy" else "",
                  "reason": "loss differs from the reference" if status == "failed" else ""}
            out.append(Record(phase="forward", median_s=1.234e-4 * batch, **{**base, **kw}))
            out.append(Record(phase="gradient", median_s=3.1e-4 * batch, ratio=2.51, ratio_ci_low=2.41,
                              ratio_ci_high=2.62, theory_ratio=2.5, **{**base, **kw}))
    return out


def test_the_summary_fits_80_columns_with_every_column_and_the_reasons_below():
    text = printed_at(run_rows(), 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for word in ("batch,", "depth", "framework", "fwd ms", "grad ms", "R [95% CI]", "theory", "status",
                 "tensorflow", "2.51 [2.41, 2.62]", "2.50"):
        assert word in text, word
    # The status keeps its word; the reason has the whole width below the table.
    assert "noisy [1]" in text and "[1] tensorflow 64,512,2: R CI half-width 18 %" in text
    assert "failed [2]" in text and "[2] jax 1024,512,2: loss differs from the reference" in text
    # Times: three significant digits and never a trailing dot.
    assert "7.90" in text and " 126 " in text and "126." not in text


def test_the_summary_ends_with_one_verdict_line_per_framework_and_device():
    text = printed_at(run_rows(), 200)
    # Two cases: their range, rounded outwards to one decimal.
    assert "torch eager · cpu: the gradient costs 2.5× the forward pass [2.5, 2.6] (2 cases); " \
           "FLOP theory 2.5×" in text
    assert "tensorflow function · cpu: the gradient costs 2.5×" in text
    assert "1 of 2 noisy or unreliable" in text
    assert "jax jit · cpu: the gradient costs 2.5× the forward pass [2.4, 2.7] (1 case)" in text


def printed_at(records: list[Record], width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width).print(console.summary(records))
    return buf.getvalue()


def test_the_summary_as_json_carries_numbers_and_the_verdicts():
    import json

    buf = io.StringIO()
    console.show_summary(run_rows(), "json", Console(file=buf, width=60))
    doc = json.loads(buf.getvalue())
    noisy = [r for r in doc["cases"] if r["quality"] == "noisy"]
    assert len(doc["cases"]) == 6 and len(noisy) == 1
    assert noisy[0]["R"] == 2.51 and noisy[0]["forward_s"] == 1.234e-4 * 64
    assert noisy[0]["reason"] == "R CI half-width 18 %" and noisy[0]["case"] == "batch=64,width=512,depth=2"
    assert {v["framework"] for v in doc["verdicts"]} == {"torch", "tensorflow", "jax"}
    assert all(isinstance(v["R"], float) and v["line"].startswith(v["framework"]) for v in doc["verdicts"])


def test_the_summary_as_plain_text_and_markdown_has_every_column():
    for form, marks in (("plain", ()), ("markdown", ("| batch, width, depth | framework |", "|---|"))):
        buf = io.StringIO()
        console.show_summary(run_rows(), form, Console(file=buf, width=60))
        text = buf.getvalue()
        for word in ("fwd ms", "grad ms", "R [95% CI]", "theory", "noisy [1]", "tensorflow", *marks):
            assert word in text, (form, word)
        assert ("─" in text) is False


def test_a_warning_wraps_at_word_boundaries_in_a_terminal_and_is_one_line_in_a_log(monkeypatch):
    busy = [replace(r, quality="noisy", quality_reason="other processes used 1.3 CPU") for r in rows(())]
    message = console.quality_warning([*rows(()), *busy])
    assert message.startswith("2 of 4 measured rows are noisy (2)")
    for terminal in (True, False):
        buf = io.StringIO()
        monkeypatch.setattr(console, "err", console.SafeConsole(
            file=buf, width=40, force_terminal=terminal, color_system=None, soft_wrap=True))
        console.warn(message)
        lines = buf.getvalue().splitlines()
        if terminal:
            assert len(lines) > 2 and all(len(ln) <= 40 for ln in lines)
            assert set(message.split()) <= set(buf.getvalue().split())  # no word cut
        else:
            assert lines == [message]


def test_one_flagged_row_is_said_in_the_singular():
    flagged = [replace(r, quality="unreliable" if r.phase == "gradient" else "good") for r in rows(())]
    assert console.quality_warning(flagged).startswith("1 of 2 measured rows is noisy (0) or unreliable (1)")


def test_a_verdict_of_one_case_with_an_enormous_interval_is_still_a_line():
    """A one-case CI reaching 1e308 (a hostile or broken results file) overflowed math.ceil."""
    from bench.stats.gradient_cost import GradientCost

    line = GradientCost("torch", "eager", "cpu", (2.5,), (2.5,), 1.0, 1e308).line
    assert line.startswith("torch eager · cpu: the gradient costs 2.5× the forward pass (1 case)")
