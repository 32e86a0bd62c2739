"""The "did you mean" hint for a misspelt name: the closest known name, if one is close enough."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'BatchSize'?` for `BatchSzie` (or `batchsize`: case is ignored in the
    comparison), or "" when no known name is close."""
    by_lower = {candidate.lower(): candidate for candidate in sorted(set(known))}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""
