"""How numbers look to people: one module for times, ratios and intervals in every output."""

from __future__ import annotations

import math


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
    return f"{x:.3g}"


def ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant digits ("-" for NaN)."""
    return "-" if math.isnan(seconds) else sig3(seconds * 1e3)


def ratio(value: float, low: float = math.nan, high: float = math.nan) -> str:
    """A ratio with two decimals and its interval when it has one: ``2.80 [2.70, 3.24]``."""
    if math.isnan(value):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return f"{value:.2f}"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"
