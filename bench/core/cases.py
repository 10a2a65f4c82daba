"""A case: one point of a suite's parameter grid, and its id (built and parsed here only).

A case id is its parameters as ``name=value`` joined by commas, in the
suite's order: ``batch=256,width=512,depth=4``. It is stable and readable,
and unique within a suite (two suites may share ids).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One point of a suite's parameter grid.

    ``name`` keeps an id that is not of bench's form (a benchmark imported from
    another tool): such a case has no parameters and is called by that id.
    """

    suite: str
    params: tuple[tuple[str, int], ...]
    name: str = ""

    @classmethod
    def of(cls, suite: str, params: Mapping[str, int]) -> Case:
        """The case of ``suite`` with these parameters, in their order."""
        return cls(suite, tuple((k, int(v)) for k, v in params.items()))

    @classmethod
    def from_id(cls, suite: str, case_id: str) -> Case:
        """The case a stored id names: its parameters when the id is of bench's form, else the id alone."""
        pairs = parse_id(case_id)
        if pairs and all(_is_int(v) for _, v in pairs):
            return cls(suite, tuple((k, int(v)) for k, v in pairs))
        return cls(suite, (), case_id)

    @property
    def id(self) -> str:
        """Stable, readable name: ``batch=256,width=256,depth=3``."""
        return self.name or ",".join(f"{k}={v}" for k, v in self.params)

    def as_dict(self) -> dict[str, int]:
        """The parameters as a dict, in their order."""
        return dict(self.params)

    @property
    def params_json(self) -> str:
        """The parameters as the results' ``params`` column holds them: a JSON object."""
        return json.dumps(self.as_dict(), sort_keys=True)


def parse_id(case_id: str) -> list[tuple[str, str]]:
    """``batch=64,width=128`` as ``[("batch", "64"), ("width", "128")]``; ``[]`` when the id is not
    of that form (every part a ``name=value`` with a name)."""
    parts = [p.partition("=") for p in str(case_id).split(",")]
    if not all(sep and key.strip() for key, sep, _ in parts):
        return []
    return [(k.strip(), v.strip()) for k, _, v in parts]


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
