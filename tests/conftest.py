"""Shared test helpers: framework skips and running the real CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_SUITES = Path(__file__).resolve().parent / "suites"
FRAMEWORKS = ("torch", "tensorflow", "jax")


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def needs(*names: str) -> pytest.MarkDecorator:
    """Skip (cleanly, with the reason) unless every named framework is installed."""
    missing = [n for n in names if not installed(n)]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


def bench_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``bench`` console script (the real entry point)."""
    exe = Path(sys.executable).with_name("bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
