"""Every timing default in one place: what `bench run` does when not told otherwise.

The CLI, the run settings, the timing engine and the worker read these
names; nothing else writes the numbers. docs/usage.md and docs/methodology.md quote them.
"""

from __future__ import annotations

# Seconds of timed blocks per case (all processes together), and with --quick.
BUDGET_S = 2.0
QUICK_BUDGET_S = 0.5
# Timed warm-up per phase after the calibration (caches, allocators, clocks).
WARMUP_S = 0.1
QUICK_WARMUP_S = 0.02
# Rounds: at least this many, whatever the budget.
MIN_ROUNDS = 5
# Worker processes per case (bench run --processes): see docs/methodology.md,
# "Between-process variation", for the measurements behind them.
PROCESSES = 3
QUICK_PROCESSES = 1
# A worker that sends nothing for this long is killed: at least
# TIMEOUT_S, or TIMEOUT_BUDGETS budgets if that is longer.
TIMEOUT_S = 120.0
TIMEOUT_BUDGETS = 60
# With --precision, the longest the rounds of one case may last in one process.
MAX_TIME_S = 30.0
