"""Cross-check bench's timing engine for TensorFlow against a plain tf.function loop.

Times the TensorFlow forward and gradient phases of one mlp_regression case
(the tf.function callables of ``bench.backends.tensorflow.implement``, the
same pinned threads and thread pools, a worker's environment) with bench's
Timer, as a worker runs it, and with a plain loop: blocks of back-to-back
calls ending with a device sync (``tf.test.experimental.sync_devices()`` and
reading the first output back to NumPy), blocks of at least 20 ms, the median
per call. bench itself does not sync on the CPU, where TensorFlow runs
synchronously; the plain loop's sync checks that. The two alternate a few
times; the script prints both medians per phase and their relative
difference. See scripts/crosscheck_common.py for the details.

    python scripts/crosscheck_tf_timer.py [--batch 256 --width 256 --depth 3] [--threads N] [--budget 2]

Exit status: 0 both phases within 5 %, 1 one is not, 2 an argument error.
"""

from __future__ import annotations

import sys
from typing import Any

import crosscheck_common as common

from bench import backends


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args("crosscheck_tf_timer.py", __doc__.splitlines()[0], argv)
    if not backends.get("tensorflow").available():
        print("crosscheck_tf_timer.py: tensorflow is not installed", file=sys.stderr)
        return 2
    common.ensure_worker_env(args)
    import numpy as np
    import tensorflow as tf

    def sync(out: Any) -> None:
        tf.test.experimental.sync_devices()
        np.asarray(tf.nest.flatten(out)[0])

    return common.crosscheck("tensorflow", "function", args, sync,
                             "the same tf.function callables + sync_devices() and a read-back")


if __name__ == "__main__":
    raise SystemExit(main())
