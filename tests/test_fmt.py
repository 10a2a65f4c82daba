"""bench.fmt: numbers for people."""

from __future__ import annotations

import math

import pytest

from bench import fmt


@pytest.mark.parametrize(("x", "text"), [(0.0724, "0.0724"), (1.86, "1.86"), (16.0, "16.0"), (142.0, "142"),
                                         (1234.5, "1234"), (2.5e7, "2.50e+07"), (math.nan, "-"),
                                         (math.inf, "inf"), (-3.21, "-3.21")])
def test_three_significant_digits_without_a_trailing_dot(x, text):
    assert fmt.sig3(x) == text
    assert not fmt.sig3(x).endswith(".")


def test_milliseconds_and_ratios():
    assert fmt.ms(0.1424) == "142" and fmt.ms(math.nan) == "-"
    assert fmt.ratio(2.8, 2.7, 3.24) == "2.80 [2.70, 3.24]"
    assert fmt.ratio(2.8) == "2.80" and fmt.ratio(math.nan) == "-"
