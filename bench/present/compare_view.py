"""What ``bench compare`` prints: its tables as bench.present.tables sheets, one per suite, fitted to
the width.

Each sheet keeps the case (stacked above its rows when short of width), the
framework, the speedup or R and the verdict; the device goes into the title
when it is the same on every row, the times are the first to go. A verdict
of faster or slower always agrees with its interval (bench.stats.change), and a
large change reads "500× slower", not "0.00 [0.00, 0.00]".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.core import fmt
from bench.present import tables
from bench.stats.change import INCONCLUSIVE, NO_SAMPLES, UNTESTED
from bench.stats.gradient_cost import DEFAULT_MODES

Col = tables.Column
Row = tables.Row
COLOURS = {"faster": "green", "slower": "red", "lower": "green", "higher": "red", INCONCLUSIVE: "yellow"}
# The calls in a few letters, for narrow terminals (the JSON keeps the whole call).
BRIEF = {"no significant change": "no change", INCONCLUSIVE: "inconclusive",
         NO_SAMPLES: "untested: no samples", UNTESTED[1]: "untested: few samples"}
CASE_FIELDS = ("suite", "case", "framework", "mode", "device", "dtype", "phase", "base_median_s",
               "new_median_s", "speedup", "speedup_ci_low", "speedup_ci_high", "p_value", "verdict")
RATIO_FIELDS = ("suite", "case", "framework", "mode", "device", "dtype", "base_R", "base_R_low",
                "base_R_high", "new_R", "new_R_low", "new_R_high", "p_value", "R_change")
MEMORY_FIELDS = ("suite", "case", "framework", "mode", "device", "dtype", "phase", "base_peak_bytes",
                 "new_peak_bytes", "peak_bytes_ratio", "base_memory_ratio", "new_memory_ratio")


def label(row: Row) -> str:
    """``torch``, or ``torch compile`` where the mode is not the framework's default."""
    fw, mode = str(row.get("framework", "")), str(row.get("mode", ""))
    return fw if DEFAULT_MODES.get(fw) == mode else f"{fw} {mode}"


def _call(key: str) -> tuple[Callable[[Row], str], Callable[[Row], str], Callable[[Row], str]]:
    """A call column's (text, brief text, style)."""
    return ((lambda r: str(r[key])), (lambda r: BRIEF.get(r[key], str(r[key]))),
            (lambda r: COLOURS.get(r[key], "")))


def _said(r: Row) -> bool:
    """Whether the speedup may say faster or slower: the call does, or no test was possible (medians)."""
    return r["verdict"] in ("faster", "slower", *UNTESTED)


def per_suite(frame, name: str, title: str, columns: Callable[[str, Callable], list[Col]],
              fields: Sequence[str]) -> list[tables.Sheet]:
    """One sheet per suite of ``frame``; the device goes into the title when every row has the same."""
    rows = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
    suites: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        suites.setdefault(str(r.get("suite", "")), []).append(r)
    sheets = []
    for suite, these in suites.items():
        header, shown = tables.case_header(str(r.get("case", "")) for r in these)
        cols = columns(header, shown)
        devices = {str(r.get("device", "")) for r in these}
        where = f" · {devices.pop()}" if len(devices) == 1 else ""
        if where:
            cols = [c for c in cols if c.key != "device"]
        sheets.append(tables.Sheet(name, f"{suite}{where}: {title}" if title else f"{suite}{where}",
                                   tuple(cols), tuple(these), (), tuple(fields)))
    return sheets


def _keys(header: str, shown: Callable[[str], str], phase: bool = True) -> list[Col]:
    # The whole case id where there is room (what `grep` and `bench export` know), else its values.
    out = [Col("case", "case", short=header, brief=lambda r: shown(str(r["case"])),
               stack=lambda r: str(r["case"]), fold_header=True),
           Col("framework", "framework", text=label),
           Col("device", "device", drop=3)]
    if phase:
        out.append(Col("phase", "phase", brief=lambda r: {"forward": "fwd", "gradient": "grad"}.get(
            str(r["phase"]), str(r["phase"]))))
    return out


def _speedup(r: Row) -> str:
    return fmt.speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"], _said(r))


def case_sheets(shown) -> list[tables.Sheet]:
    """Every compared case: both medians, the speedup with its CI, the verdict."""
    def columns(header: str, case: Callable[[str], str]) -> list[Col]:
        text, brief, style = _call("verdict")
        return [*_keys(header, case),
                Col("base_median_s", "base ms", text=lambda r: fmt.ms(r["base_median_s"]), right=True,
                    drop=1),
                Col("new_median_s", "new ms", text=lambda r: fmt.ms(r["new_median_s"]), right=True, drop=1),
                Col("speedup", "speedup [95% CI]", short="speedup", right=True, text=_speedup),
                Col("verdict", "verdict", text=text, brief=brief, style=style)]

    return per_suite(shown, "cases", "", columns, CASE_FIELDS)


def geomean_sheet(g) -> tables.Sheet:
    """The geometric-mean speedup per framework, device and phase."""
    rows = g.to_dict("records")
    devices = {str(r["device"]) for r in rows}
    where = f" · {devices.pop()}" if len(devices) == 1 else ""
    cols = (Col("framework", "framework", text=label), *(() if where else (Col("device", "device"),)),
            Col("phase", "phase"), Col("cases", "cases", right=True),
            Col("geomean_speedup", "geomean speedup", short="geomean", right=True,
                text=lambda r: fmt.speedup(r["geomean_speedup"])))
    return tables.Sheet("geomean", f"geometric mean speedup over matched cases{where}", cols, tuple(rows), (),
                        ("framework", "mode", "device", "phase", "cases", "geomean_speedup"))


def ratio_sheets(ratios) -> list[tables.Sheet]:
    """R = T(gradient)/T(forward) of both runs per case, and whether it changed."""
    def columns(header: str, case: Callable[[str], str]) -> list[Col]:
        text, brief, style = _call("R_change")
        return [*_keys(header, case, phase=False),
                Col("base_R", "base R", right=True, text=lambda r: fmt.ratio(r["base_R"], r["base_R_low"],
                                                                           r["base_R_high"])),
                Col("new_R", "new R", right=True, text=lambda r: fmt.ratio(r["new_R"], r["new_R_low"],
                                                                         r["new_R_high"])),
                Col("R_change", "R change", text=text, brief=brief, style=style)]

    return per_suite(ratios, "R", "R = T(gradient)/T(forward) in both runs", columns, RATIO_FIELDS)


def memory_sheets(shown, bytes_text: Callable[[float], str]) -> list[tables.Sheet]:
    """Peak bytes of one call in both runs, new / base, and M on the gradient rows."""
    def m(key: str) -> Callable[[Row], str]:
        # M is the gradient's; on other rows it would be another phase's quotient.
        return lambda r: fmt.ratio(r[key]) if r["phase"] == "gradient" else ""

    def columns(header: str, case: Callable[[str], str]) -> list[Col]:
        return [*_keys(header, case),
                Col("base_peak_bytes", "base peak", right=True, drop=1,
                    text=lambda r: bytes_text(r["base_peak_bytes"])),
                Col("new_peak_bytes", "new peak", right=True, drop=1,
                    text=lambda r: bytes_text(r["new_peak_bytes"])),
                Col("peak_bytes_ratio", "new / base", right=True,
                    text=lambda r: fmt.ratio(r["peak_bytes_ratio"])),
                Col("base_memory_ratio", "base M", right=True, text=m("base_memory_ratio")),
                Col("new_memory_ratio", "new M", right=True, text=m("new_memory_ratio"))]

    return per_suite(shown, "memory", "memory: extra bytes at the peak of one call; "
                     "M = peak(gradient) / peak(forward)", columns, MEMORY_FIELDS)


def _calls_text(r: Row) -> str:
    counts = [(r["faster"], "faster"), (r["slower"], "slower"), (r["no_change"], "no change"),
              (r["inconclusive"], "inconclusive"), (r["untested"], "untested")]
    return ", ".join(f"{int(n)} {word}" for n, word in counts if n)


def summary_sheets(summary) -> list[tables.Sheet]:
    """Many cases: per suite, framework, device and phase, the geometric-mean speedup and the calls."""
    def columns(header: str, case: Callable[[str], str]) -> list[Col]:
        return [Col("framework", "framework", text=label), Col("device", "device", drop=2),
                Col("phase", "phase"), Col("cases", "cases", right=True),
                Col("geomean_speedup", "geomean speedup", short="geomean", right=True,
                    text=lambda r: fmt.speedup(r["geomean_speedup"])),
                Col("calls", "calls", text=_calls_text, wrap=True)]

    fields = ("suite", "framework", "mode", "device", "phase", "cases", "geomean_speedup", "faster", "slower",
              "no_change", "inconclusive", "untested")
    return per_suite(summary, "summary", "", columns, fields)


def differences_sheet(diff: Sequence[tuple[str, str, str]]) -> tables.Sheet:
    """What differs between the compared runs: machine facts, versions, settings."""
    rows = tuple({"fact": f, "base": b, "new": n} for f, b, n in diff)
    cols = (Col("fact", "fact"), Col("base", "base", wrap=True), Col("new", "new", wrap=True))
    return tables.Sheet("differences", "what differs between the compared runs", cols, rows)


def calls_line(table) -> tables.Line:
    """How many cases got each call: every compared row counts, shown or not."""
    counts = sorted(table.verdict.value_counts().to_dict().items())
    calls: dict[str, Any] = {str(k): int(v) for k, v in counts}
    return tables.Line(", ".join(f"{v}: {n}" for v, n in calls.items()), name="calls", value=calls)
