"""``pytest suites/ --benchmark-only`` under the conditions of ``bench run``'s workers.

The plugin lives in bench (``bench.interop.pytest_plugin``); pytest finds its
hooks and fixture here by name.
"""

from bench.interop.pytest_plugin import (  # noqa: F401
    bench_session,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)
