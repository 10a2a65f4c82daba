"""The one exception type for mistakes a user can fix, and the hint for a misspelled name."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix (bad option, missing framework, unreadable file).

    The CLI catches it once and prints its message as one line, exit code 2.
    The message says what was wrong and what to do about it.
    """


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'softsign'? "`` when ``name`` is close to one of ``known``, else ``""``.

    Meant to sit inside a UserError message, before the list of known names.
    Case is ignored in the match; the suggestion is spelled as ``known`` spells it.
    """
    import difflib  # only on this error path: ``import bench`` stays light

    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f"did you mean {by_lower[close[0]]!r}? " if close else ""
