"""One interface over three frameworks: mirrored modules with the same names.

``bench/backends/{torch,tensorflow,jax}.py`` each define:

- ``MODES``, ``DEFAULT_MODE``: how the framework can execute the model.
- ``DEVICE_KINDS``: the device kinds it can run on (``bench.core.device.KINDS``).
- ``UNSUPPORTED``: ``{(mode, phase): reason}`` for phases a mode cannot offer.
- ``MEMORY_METHOD``: ``{device kind: text}``, how saved and peak bytes are
  measured there (stored with every row).
- ``available() -> bool`` and ``version() -> str``: without importing it.
- ``configure(threads, allow_tf32, seed) -> dict``: threads, numerics, memory
  and seeds, set before any work; returns the settings actually in effect.
- ``resolve_device(device) -> (native, name)``: a ``bench.core.device.Device`` (or
  its text) to the framework's own device object and the device's name, or
  ``DeviceUnavailable`` with the reason.
- ``devices() -> list[str]``: the device specs this framework can use here.
- ``to_device(array, device)``, ``to_numpy(x)``: placing and reading data.
- ``sync(out, device)``: wait until ``out`` (and all queued work) is computed.
- ``matmul(device, n) -> run``: a call of an ``n x n`` float32 matrix product,
  timed once per worker to measure the device's peak FLOP/s in this framework.
- ``flusher(device, nbytes) -> flush``: a call that overwrites ``nbytes`` on
  the device (the ``--l2 flush`` cache policy); returns what to sync on.
- ``implement(loss, problem, device, mode, lr, optimizer) -> Implementation``:
  the phases to time, the loss and gradients to check, a training run, a
  count of traces and compilations (to catch recompiles while timing), and
  the memory probes (bytes saved for the backward pass, peak bytes per phase).

Only ``available`` and ``version`` are safe before the worker has decided to
use the framework; everything else imports it.
"""

from bench.backends.common import (
    DeviceUnavailable,
    Implementation,
    Phase,
    as_device,
    cpu_flusher,
    get,
    skipped,
)

__all__ = ["DeviceUnavailable", "Implementation", "Phase", "as_device", "cpu_flusher", "get", "skipped"]
