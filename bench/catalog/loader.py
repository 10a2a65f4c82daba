"""Loads one suite: a plain Python module, imported by its path (like asv's benchmarks), and checks
that it keeps the contract. A suite module defines:

- ``DESCRIPTION``: one line saying what the model is.
- ``GRID``: the cases of a full run, either ``{parameter: [values, ...]}``
  (every combination) or a list of parameter dicts (for sweeps that vary one
  parameter at a time around a centre, where a full product would explode).
- ``QUICK``: a list of parameter dicts, the small subset ``--quick`` runs.
- ``problem(params, seed) -> bench.Problem``: data and initial
  parameters in NumPy, the same for every framework.
- ``reference(problem) -> (loss, grads)``: loss and gradients in float64
  NumPy, the ground truth every framework is checked against before timing.
- ``flops(params) -> bench.Flops``: analytic FLOPs of forward and gradient.
- ``loss_torch``, ``loss_tensorflow``, ``loss_jax``: ``(params, X, y) -> loss``,
  one per framework it supports, importing its framework inside the function
  so that listing suites never imports a framework.
- optionally ``memory(params) -> bench.Memory``: analytic bytes saved for
  the backward pass and the extra bytes at the peak of forward and gradient,
  the theory beside the measured memory columns (NaN where absent).
- optionally ``TOLERANCE``: the largest relative error accepted in float32
  (default 1e-5). With ``--allow-tf32`` at least ``TF32_TOLERANCE`` applies.
- optionally a hand-written optimizer instead of plain SGD: ``init_<fw>(params)
  -> state`` and ``update_<fw>(params, grads, state, lr) -> (params, state)`` for
  every framework the suite supports, plus ``init_numpy``/``update_numpy`` for
  the float64 reference. torch updates in place under ``no_grad``, TensorFlow
  assigns to its variables (state made of ``tf.Variable``), JAX returns new
  arrays; all three return ``(params, state)``. ``UPDATE_FLOPS`` then says
  how many FLOPs per parameter one update costs (default 2, plain SGD).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bench.core.cases import Case
from bench.core.contract import Memory, Optimizer
from bench.core.errors import UserError
from bench.core.records import FRAMEWORKS

DEFAULT_TOLERANCE = 1e-5

# TF32 keeps 10 bits of mantissa (relative precision about 1e-3).
TF32_TOLERANCE = 5e-3
REQUIRED = ("DESCRIPTION", "GRID", "QUICK", "problem", "reference", "flops")


@dataclass(frozen=True, eq=False)
class Suite:
    """A loaded suite module and what it declares."""

    name: str
    path: Path
    module: ModuleType

    @property
    def description(self) -> str:
        return str(self.module.DESCRIPTION)

    @property
    def grid(self) -> Mapping[str, list[int]] | list[Mapping[str, int]]:
        return self.module.GRID

    @property
    def tolerance(self) -> float:
        return float(getattr(self.module, "TOLERANCE", DEFAULT_TOLERANCE))

    @property
    def update_flops(self) -> int:
        """FLOPs per parameter of one optimizer update (SGD: a multiply and a subtract)."""
        return int(getattr(self.module, "UPDATE_FLOPS", 2))

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f in FRAMEWORKS if callable(getattr(self.module, f"loss_{f}", None)))

    def cases(self, quick: bool = False) -> list[Case]:
        """The quick subset, or every combination of the grid."""
        if quick:
            return [Case.of(self.name, p) for p in self.module.QUICK]
        grid = self.grid
        if isinstance(grid, list):
            return [Case.of(self.name, p) for p in grid]
        keys = list(grid)
        return [
            Case.of(self.name, dict(zip(keys, values, strict=True)))
            for values in itertools.product(*(grid[k] for k in keys))
        ]

    def memory(self, params: Mapping[str, int]) -> Memory | None:
        """The suite's analytic memory of a case, or None when it declares none."""
        fn = getattr(self.module, "memory", None)
        return fn(dict(params)) if callable(fn) else None

    def loss(self, framework: str) -> Callable:
        return getattr(self.module, f"loss_{framework}")

    def optimizer(self, framework: str):
        """The suite's hand-written optimizer for ``framework`` (or numpy), None for plain SGD."""
        init = getattr(self.module, f"init_{framework}", None)
        update = getattr(self.module, f"update_{framework}", None)
        return Optimizer(init, update) if init and update else None


def load_file(path: Path) -> Suite:
    """Import one suite module by path and check it defines the contract."""
    name = path.stem
    spec = importlib.util.spec_from_file_location(f"bench_suite_{name}", path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot load suite file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:  # the user's Ctrl-C stops bench, it does not break the suite
        sys.modules.pop(spec.name, None)
        raise
    except SystemExit as exc:  # would end bench with no message and exit code 0
        sys.modules.pop(spec.name, None)
        raise UserError(f"suite {name} ({path}) calls sys.exit({exc.code!r}) at import") from None
    except BaseException as exc:  # any failure of a user's file is that file's
        sys.modules.pop(spec.name, None)
        raise UserError(
            f"suite {name} ({path}) fails to import: {type(exc).__name__}: {_one_line(exc)}{_hint(exc)}"
        ) from exc
    missing = [a for a in REQUIRED if not hasattr(module, a)]
    if missing:
        raise UserError(f"suite {name} ({path}) lacks {', '.join(missing)}: see bench/catalog/loader.py")
    _check_cases(name, path, module)
    suite = Suite(name, path, module)
    if not suite.frameworks:
        raise UserError(f"suite {name} ({path}) defines no loss_torch, loss_tensorflow or loss_jax")
    # A hand-written optimizer must exist for every framework (and NumPy), or
    # the frameworks would train different models.
    targets = (*suite.frameworks, "numpy")
    defined = [t for t in targets if hasattr(module, f"update_{t}") or hasattr(module, f"init_{t}")]
    complete = [t for t in targets if suite.optimizer(t) is not None]
    if defined and len(complete) != len(targets):
        lacking = [t for t in targets if t not in complete]
        raise UserError(
            f"suite {name} ({path}) has a hand-written optimizer but lacks init_/update_ "
            f"for {', '.join(lacking)}"
        )
    return suite


def _check_cases(name: str, path: Path, module: ModuleType) -> None:
    """GRID and QUICK must describe cases: parameter names with integer values."""
    grid, quick = module.GRID, module.QUICK

    def is_case(c: object) -> bool:
        return isinstance(c, dict) and bool(c) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in c.items()
        )

    if isinstance(grid, dict):  # a product: each parameter's list of values
        grid_ok = bool(grid) and all(
            isinstance(v, list | tuple) and v and all(is_case({k: x}) for x in v) for k, v in grid.items()
        )
    else:
        grid_ok = isinstance(grid, list) and bool(grid) and all(is_case(c) for c in grid)
    if not grid_ok:
        raise UserError(
            f"suite {name} ({path}): GRID must be {{name: [int, ...]}} or a list of {{name: int}} dicts"
        )
    if not (isinstance(quick, list) and quick and all(is_case(c) for c in quick)):
        raise UserError(f"suite {name} ({path}): QUICK must be a non-empty list of {{name: int}} dicts")


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (messages are printed one per line)."""
    return " ".join(str(exc).split())[:500]


def _hint(exc: BaseException) -> str:
    """What to do about an import error that bench's own history explains."""
    if isinstance(exc, ModuleNotFoundError) and exc.name == "bench.spec":
        # Suites written before bench's packages imported the contract from bench.spec.
        return " (bench.spec is gone: write `from bench import Flops, Memory, Problem`)"
    return ""
