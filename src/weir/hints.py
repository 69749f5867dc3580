""" "Did you mean …" suggestions shared by registries and config validation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Return a hint naming the closest choice, or listing the choices when none is close."""
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if options:
        return "expected one of: " + ", ".join(options)
    return None
