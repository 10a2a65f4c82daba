"""The one clock of bench's records and names: UTC, to the second.

Every timestamp bench writes (rows, run metadata, reports, exports) is
``now()``; every id that starts with the time (runs, fleet runs) starts with
``stamp()``, so ids sort by when they began.
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> str:
    """The time as ISO 8601 in UTC, to the second: ``2026-12-07T23:06:36+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp() -> str:
    """The time as the start of an id: ``20261207T230636Z``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse(text: str) -> datetime:
    """A time ``now()`` wrote (ValueError for anything else)."""
    return datetime.fromisoformat(text)
