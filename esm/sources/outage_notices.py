"""When to say that a source cannot be reached (pure: the caller passes the clock's time).

A client library retries on its own and says so many times a second (those lines are kept below
WARNING, see esm.logs); what a person needs is one line soon after the source went away, a
reminder now and then while it stays away, and one line when it is back:

- DOWN once it has been unreachable for `confirm_after` seconds (a connection that drops and
  comes straight back is no outage);
- STILL_DOWN every `repeat_every` seconds after that while it lasts;
- BACK at the first reachable observation after a DOWN (nothing if no DOWN was said).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


class Notice(enum.Enum):
    DOWN = "down"
    STILL_DOWN = "still down"
    BACK = "back"


@dataclass(frozen=True)
class Said:
    notice: Notice
    # How long the source has been (or was, for BACK) unreachable.
    down_seconds: float


class OutageNotices:
    def __init__(self, confirm_after: float = 2.0, repeat_every: float = 60.0) -> None:
        self._confirm_after = confirm_after
        self._repeat_every = repeat_every
        self._down_since: float | None = None
        self._last_said: float | None = None  # when DOWN or STILL_DOWN was last said

    @property
    def down(self) -> bool:
        """Whether a DOWN was said and no BACK since."""
        return self._last_said is not None

    def observe(self, reachable: bool, now: float, since: float | None = None) -> Said | None:
        """One observation at `now`; `since`: when the unreachable spell began, if known to have
        begun earlier (a connection attempt that took a while to fail). What to say, if anything."""
        if reachable:
            said = None
            if self._last_said is not None and self._down_since is not None:
                said = Said(Notice.BACK, now - self._down_since)
            self._down_since = self._last_said = None
            return said
        if self._down_since is None:
            self._down_since = now if since is None else min(since, now)
        down_for = now - self._down_since
        if self._last_said is None:
            if down_for < self._confirm_after:
                return None
            self._last_said = now
            return Said(Notice.DOWN, down_for)
        if now - self._last_said >= self._repeat_every:
            self._last_said = now
            return Said(Notice.STILL_DOWN, down_for)
        return None


class OutageLog:
    """OutageNotices that write the lines to `logger`: `doing` says what fails, e.g. "read the
    mappings in the store" (`cannot read the mappings in the store: <error>`, `still cannot ...
    after 60s: <error>`, `can read the mappings in the store again after 75s`)."""

    def __init__(
        self,
        logger: logging.Logger,
        doing: str,
        confirm_after: float = 0.0,
        repeat_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._doing = doing
        self._notices = OutageNotices(confirm_after, repeat_every)
        self._clock = clock

    def failed(self, error: object) -> None:
        said = self._notices.observe(False, self._clock())
        if said is None:
            return
        if said.notice is Notice.DOWN:
            self._log.warning("cannot %s: %s", self._doing, error)
        else:
            self._log.warning("still cannot %s after %.0fs: %s", self._doing, said.down_seconds, error)

    def succeeded(self) -> None:
        said = self._notices.observe(True, self._clock())
        if said is not None:
            self._log.warning("can %s again after %.0fs", self._doing, said.down_seconds)
