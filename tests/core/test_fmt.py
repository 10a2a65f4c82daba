"""bench.core.fmt: numbers for people."""

from __future__ import annotations

import math

import pytest

from bench.core import fmt


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


def test_three_digits_keep_their_zeros_below_one():
    assert fmt.sig3(0.9996) == "1.00" and fmt.sig3(0.5) == "0.500" and fmt.ms(0.0009996) == "1.00"


def test_small_ratios_keep_two_digits_instead_of_reading_zero():
    assert fmt.ratio(0.002, 0.0019, 0.0021) == "0.0020 [0.0019, 0.0021]"
    assert fmt.ratio(0.004, 0.003, 0.005) == "0.0040 [0.0030, 0.0050]"


@pytest.mark.parametrize(("value", "low", "high", "text"), [
    (1 / 500, 1 / 526, 1 / 476, "500× slower [476, 526]"),
    (3.2, 3.04, 3.41, "3.2× faster [3.0, 3.4]"),
    (0.1, math.nan, math.nan, "10× slower"),
    (1.07, 1.02, 1.11, "1.07 [1.02, 1.11]"),
    (0.8, 0.78, 0.83, "0.80 [0.78, 0.83]"),
    (0.5001, math.nan, math.nan, "2.0× slower"), (0.4999, math.nan, math.nan, "2.0× slower"),
    (0.52, math.nan, math.nan, "0.52"),
    (math.nan, math.nan, math.nan, "-"),
])
def test_large_changes_read_as_times_faster_or_slower(value, low, high, text):
    assert fmt.speedup(value, low, high) == text


def test_a_speedup_without_its_words_is_a_number():
    # Beside an inconclusive call "500× slower" would be a verdict the call does not make.
    assert fmt.speedup(1 / 500, 1 / 900, 1.2, words=False) == "0.0020 [0.0011, 1.20]"


def test_plurals():
    assert fmt.plural(1, "case") == "1 case" and fmt.plural(2, "case") == "2 cases"
    assert fmt.plural(0, "measured row") == "0 measured rows"
    assert fmt.plural(1, "thread") == "1 thread"


def test_percentages():
    assert fmt.pct(0.05) == "5%" and fmt.pct(0.125) == "12.5%"


def test_percentages_keep_a_decimal_below_ten():
    assert [fmt.percent(x) for x in (0.022, 0.02, 0.15, 0.999, -0.05)] == ["2.2 %", "2.0 %", "15 %", "100 %",
                                                                          "-5.0 %"]
    assert fmt.percent(math.nan) == fmt.percent(None) == "-"


def test_counts_and_sizes_get_units():
    assert [fmt.count(x) for x in (524288, 8.4e6, 1.07e9, 950, math.nan)] == ["524 k", "8.40 M", "1.07 G",
                                                                              "950", "-"]
    assert [fmt.size(x) for x in (512, 950e3, 1.1e6, 23e9, None)] == ["512 B", "950 kB", "1.1 MB", "23 GB",
                                                                      "-"]
