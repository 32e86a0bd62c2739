"""Reading on through a cooperative rebalance with kafka-python (3.0.12 internals, isolated here).

kafka-python's `poll` fetches nothing while the member rejoins its group, and a broker may hold
a JoinGroup for seconds (until every member has rejoined). Under the cooperative protocol the
partitions a member owns stay its own until a completed round revokes them, so Java's consumer
fetches on meanwhile; this module lets the consumer thread do the same.

The join must be awaited by someone when it completes: kafka-python keeps the JoinGroup/SyncGroup
round as a task, and a caller that finds the task already finished starts a new round and drops
the finished one's assignment (with short polls the round is redone forever). So one waiter
thread per round calls the coordinator's own `poll`, which drives the round to its end and runs
the rebalance listener, while the consumer thread only fetches. Nothing else of the consumer is
called from two threads: kafka-python's listeners already run on its IO thread while the caller
fetches.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka.coordinator.assignors.abstract import RebalanceProtocol

# How long one waiter waits for its round (it ends earlier when the consumer closes); a round
# still going on then is awaited by the next waiter.
ROUND_WAIT_MS = 10_000
# While a round goes on, how long one fetch may wait: the end of the round (new partitions to
# position, revoked ones gone) is noticed no later than this.
FETCH_WAIT_MS = 50


def rejoining_cooperatively(client: Any) -> bool:
    """The member is in (or about to start) a JoinGroup round under the cooperative protocol
    while it owns partitions."""
    coordinator: Any = getattr(client, "_coordinator", None)
    if coordinator is None or coordinator._rebalance_protocol != RebalanceProtocol.COOPERATIVE:
        return False
    return bool(coordinator.rejoining or coordinator.need_rejoin()) and bool(client.assignment())


class RoundWaiter:
    """Drives one rebalance round to its end on a thread of its own."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._client._coordinator.poll(timeout_ms=ROUND_WAIT_MS)
        except BaseException as err:  # handed to the consumer thread, which reconnects
            self.error = err

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


def fetch_during_round(client: Any, max_records: int, timeout_ms: int) -> tuple[dict[Any, list[Any]], bool]:
    """(records by partition, idle) from the fetcher alone: what `poll` does after the
    coordinator's part, for the partitions still assigned. Idle: nothing to wait for (the caller
    sleeps instead of spinning)."""
    fetcher = client._fetcher
    fetcher.reset_offsets_if_needed()
    fetcher.maybe_validate_positions()
    fetcher.validate_offsets_if_needed()
    records, idle = fetcher.fetch_records(
        max_records, update_offsets=True, timeout_ms=min(timeout_ms, FETCH_WAIT_MS)
    )
    return records, bool(idle)
