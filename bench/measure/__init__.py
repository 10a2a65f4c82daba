"""What runs inside a worker process: timing, interference, memory, GPU state, equivalence, the worker."""
