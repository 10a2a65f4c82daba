"""A case: one point of a suite's parameter grid, and its id (built and parsed here only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One point of a suite's parameter grid."""

    suite: str
    params: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, suite: str, params: Mapping[str, int]) -> Case:
        return cls(suite, tuple((k, int(v)) for k, v in params.items()))

    @property
    def id(self) -> str:
        """Stable, readable name: ``batch=256,width=256,depth=3``."""
        return ",".join(f"{k}={v}" for k, v in self.params)

    def as_dict(self) -> dict[str, int]:
        return dict(self.params)
