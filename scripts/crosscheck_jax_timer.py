"""Cross-check bench's timing engine for JAX against a plain jit + block_until_ready loop.

Times the JAX forward and gradient phases of one mlp_regression case (the
jitted callables of ``bench.backends.jax.implement``, the same pinned
threads, a worker's environment) with bench's Timer, as a worker runs it, and
with a plain loop: blocks of back-to-back calls ending with one
``jax.block_until_ready``, blocks of at least 20 ms, the median per call. The
two alternate a few times; the script prints both medians per phase and their
relative difference. See scripts/crosscheck_common.py for the details.

    python scripts/crosscheck_jax_timer.py [--batch 256 --width 256 --depth 3] [--threads N] [--budget 2]

Exit status: 0 both phases within 5 %, 1 one is not, 2 an argument error.
"""

from __future__ import annotations

import sys
from typing import Any

import crosscheck_common as common

from bench import backends


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args("crosscheck_jax_timer.py", __doc__.splitlines()[0], argv)
    if not backends.get("jax").available():
        print("crosscheck_jax_timer.py: jax is not installed", file=sys.stderr)
        return 2
    common.ensure_worker_env(args)
    import jax

    def sync(out: Any) -> None:
        jax.block_until_ready(out)

    return common.crosscheck("jax", "jit", args, sync, "the same jitted callables + jax.block_until_ready")


if __name__ == "__main__":
    raise SystemExit(main())
