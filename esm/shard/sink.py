"""Where a shard's records go when the failure policy gives up on them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.failures import Decision

log = logging.getLogger(__name__)

R_contra = TypeVar("R_contra", contravariant=True)


class FailureSink(Protocol[R_contra]):
    """The on-failure destination, as a shard sees it."""

    async def send(
        self, records: Sequence[R_contra], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        """Writes the records durably and returns True, or returns False when it drops them by
        design (no destination configured); raises FailureSinkError when it cannot write now."""
        ...


class FailureSinkError(Exception):
    """The failure sink could not write the records now; the shard retries."""


class DroppingSink:
    """No destination configured: as in Lambda, records given up on are dropped (and counted)."""

    async def send(
        self, records: Sequence[Any], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        log.warning(
            "%d records dropped (%s after %d invocations; no on-failure destination)",
            len(records),
            decision.condition,
            decision.invoke_count,
        )
        return False
