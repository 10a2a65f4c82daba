"""How numbers look to people: one module for times, ratios, factors, percentages, counts and sizes in
every output (the terminal, the report, stored reasons, messages)."""

from __future__ import annotations

import math

# From this factor on (either way) a change reads as "3.2× faster" or "500× slower":
# 0.00 [0.00, 0.00] says nothing about a 500-fold slowdown.
LARGE = 2.0


def sig3(x: float) -> str:
    """Three significant digits, no exponent below a million and no trailing dot: 0.0724, 1.86, 16.0, 142."""
    if not math.isfinite(x):
        return "-" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    a = abs(x)
    if a >= 1e6:
        return f"{x:.2e}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    # '#' keeps the zeros that make three digits (0.9996 is 1.00, not 1); below 1 it adds no dot.
    return f"{x:#.3g}"


def ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant digits ("-" for NaN)."""
    return "-" if math.isnan(seconds) else sig3(seconds * 1e3)


def two(x: float) -> str:
    """Two decimals, or two significant digits below 0.1 (where two decimals read 0.00)."""
    if not math.isfinite(x):
        return sig3(x)
    if x == 0 or abs(x) >= 0.1:
        return f"{x:.2f}"
    return f"{x:#.2g}" if abs(x) >= 1e-4 else f"{x:.1e}"


def ratio(value: float, low: float = math.nan, high: float = math.nan) -> str:
    """A ratio with two decimals and its interval when it has one: ``2.80 [2.70, 3.24]``."""
    if math.isnan(value):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return two(value)
    return f"{two(value)} [{two(low)}, {two(high)}]"


def factor(x: float) -> str:
    """How many times: one decimal below 10, whole above (3.2, 14, 500); no trailing dot."""
    if not math.isfinite(x):
        return sig3(x)
    if abs(x) < 10:
        return f"{x:.1f}"
    return f"{x:.0f}" if abs(x) < 1e6 else f"{x:.2e}"


def speedup(value: float, low: float = math.nan, high: float = math.nan, words: bool = True) -> str:
    """A speedup T(base) / T(new) with its CI: ``1.07 [1.02, 1.11]``; a large one as
    ``3.2× faster [3.0, 3.4]`` or ``500× slower [476, 526]`` (its CI in the same terms).

    ``words=False`` keeps the number: "faster" or "slower" must not stand beside
    a verdict that says otherwise (a CI that crosses 1, an inconclusive call).
    """
    if not math.isfinite(value) or value <= 0:
        return "-" if math.isnan(value) else sig3(value)
    ci = math.isfinite(low) and math.isfinite(high) and low > 0 and high > 0
    # Large by the factor as printed: 0.4999 and 0.5001 both read "2.0× slower".
    if words and float(factor(value)) >= LARGE:
        return f"{factor(value)}× faster" + (f" [{factor(low)}, {factor(high)}]" if ci else "")
    if words and float(factor(1 / value)) >= LARGE:
        return f"{factor(1 / value)}× slower" + (f" [{factor(1 / high)}, {factor(1 / low)}]" if ci else "")
    return ratio(value, low, high) if ci else ratio(value)


def percent(fraction: float | None) -> str:
    """A fraction as a percentage: one decimal below 10 % (2.2 % must not read as the 2 % asked),
    whole above: ``2.2 %``, ``15 %``; "-" for a missing one."""
    if fraction is None or not math.isfinite(fraction):
        return "-"
    return f"{100 * fraction:.1f} %" if abs(fraction) < 0.1 else f"{100 * fraction:.0f} %"


def count(x: float | None) -> str:
    """A large count for people (FLOPs): 524 k, 8.40 M, 1.07 G; "-" for a missing one."""
    if x is None or not math.isfinite(x):
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{sig3(x / scale)} {unit}"
    return sig3(x)


def size(x: float | None) -> str:
    """Bytes as 1.1 MB, 950 kB, 2.3 GB: decimal units (1 MB = 10⁶ bytes), two significant digits;
    "-" for a missing size."""
    if x is None or not math.isfinite(x):
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2g} {unit}" if x / scale < 10 else f"{x / scale:.0f} {unit}"
    return f"{x:.0f} B"


def pct(fraction: float) -> str:
    """A fraction as a percentage without trailing zeros: 0.05 is 5%, 0.125 is 12.5%."""
    return f"{fraction * 100:g}%"


def plural(n: int, word: str, many: str = "") -> str:
    """``1 case``, ``2 cases`` (``many`` where adding an s is wrong)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
