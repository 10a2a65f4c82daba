"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad option, missing framework, unreadable file).

    The CLI catches it once and prints its message as one line, exit code 2.
    The message says what was wrong and what to do about it.
    """
