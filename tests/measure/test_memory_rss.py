"""bench.measure.memory: the resident-set peak of one call (Linux)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.measure import memory


def needs_rss():
    why = memory.rss_supported()
    if why:
        pytest.skip(why)


def test_a_call_that_touches_64_mib_peaks_at_least_that_much():
    needs_rss()

    def touch():
        a = np.ones(64 * 2**20 // 8)  # written, so every page is resident
        return float(a[-1])

    peak = memory.rss_peak(touch)
    # Exact to a few pages: other allocations come and go around the call.
    assert 0.98 * 64 * 2**20 <= peak < 80 * 2**20


def test_memory_freed_before_the_call_does_not_hide_its_peak():
    needs_rss()
    np.ones(64 * 2**20 // 8).sum()  # allocated and freed: the allocator may keep it
    peak = memory.rss_peak(lambda: np.ones(32 * 2**20 // 8).sum())
    assert peak >= 30 * 2**20


def test_a_call_that_allocates_nothing_peaks_near_zero():
    needs_rss()
    assert memory.rss_peak(lambda: None) < 4 * 2**20


def test_without_a_resettable_high_water_mark_the_peak_is_nan(monkeypatch):
    monkeypatch.setattr(memory, "rss_supported", lambda: "no /proc here")
    assert math.isnan(memory.rss_peak(lambda: None))
