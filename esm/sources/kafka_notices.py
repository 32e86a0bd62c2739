"""What a Kafka group reader says when it waits on the brokers: esm's own lines, each naming the
mapping (UUID and function), the brokers, topic and group, once per spell (the client libraries'
own lines are kept at DEBUG, see esm.client_logs).

- brokers unreachable: after `unreachable_after_seconds`, then every `unreachable_repeat_seconds`,
  and a line when they answer again;
- no partition assigned while the member waits for the group coordinator (the topic has some)
  for longer than the session timeout: once, and a line when that ends.
The timing is esm.sources.outage_notices' (pure); this module words the lines.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from esm.sources.outage_notices import Notice, OutageNotices

log = logging.getLogger(__name__)


class ReaderNotices:
    def __init__(
        self,
        label: str,
        topic: str,
        consumer_kwargs: Mapping[str, Any],
        session_timeout_seconds: float,
        unreachable_after_seconds: float,
        unreachable_repeat_seconds: float,
    ) -> None:
        """`label`: "mapping <UUID> (function <name>)"."""
        self._label = label
        self._topic = topic
        self._group = consumer_kwargs.get("group_id")
        servers = consumer_kwargs.get("bootstrap_servers", "?")
        self._servers = ",".join(servers) if isinstance(servers, list | tuple) else str(servers)
        self._session_timeout = session_timeout_seconds
        self._outage = OutageNotices(unreachable_after_seconds, unreachable_repeat_seconds)
        self._unassigned = OutageNotices(session_timeout_seconds, repeat_every=math.inf)

    @property
    def brokers_down(self) -> bool:
        """Whether the brokers were said to be unreachable (and not back since)."""
        return self._outage.down

    def reachability(self, reachable: bool, now: float, since: float | None = None, error: str = "") -> None:
        said = self._outage.observe(reachable, now, since)
        if said is None:
            return
        where = f"Kafka brokers {self._servers} (topic {self._topic}, group {self._group})"
        why = f": {error}" if error else ""
        if said.notice is Notice.BACK:
            log.warning("%s: reached the %s again after %.0fs", self._label, where, said.down_seconds)
        elif said.notice is Notice.DOWN:
            log.error(
                "%s: cannot reach the %s for %.0fs%s; retrying", self._label, where, said.down_seconds, why
            )
        else:
            log.error(
                "%s: still cannot reach the %s after %.0fs%s; retrying",
                self._label,
                where,
                said.down_seconds,
                why,
            )

    def assignment(self, owned: int, waiting_for_coordinator: bool, now: float) -> None:
        """`waiting_for_coordinator`: the member is not settled in the group and the topic has
        partitions. Unreachable brokers are said by their own lines instead."""
        waiting = not owned and waiting_for_coordinator and not self.brokers_down
        said = self._unassigned.observe(not waiting, now)
        if said is None:
            return
        if said.notice is Notice.BACK:
            log.warning(
                "%s: no longer waiting for the group coordinator (group %s) after %.0fs; "
                "owns %d partitions of topic %s",
                self._label,
                self._group,
                said.down_seconds,
                owned,
                self._topic,
            )
        else:
            log.warning(
                "%s: no partition of topic %s assigned by the group coordinator after %.0fs "
                "(group %s, session timeout %gs); waiting for the broker to assign",
                self._label,
                self._topic,
                said.down_seconds,
                self._group,
                self._session_timeout,
            )
