"""Where a Kinesis or DynamoDB Streams mapping's shards stand, for `esm status`.

The lease table is the list of shards: every shard a poller discovered has a lease there, so a
shard nobody owns right now (its owner died, or no poller runs) still shows, with its parents and
checkpoint. What only the owner knows (state, batches in flight, how far behind, errors, records
lost to retention) comes from the report it publishes to the store's `status` role. A report is
used only when its owner holds the lease now: the last report of a dead or displaced owner lives
on for a few seconds and must not read as the shard's current state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from esm.ownership.leases import Lease
from esm.sources.stream_discovery import StreamArnError, StreamSource, resolve_stream_arn

__all__ = [
    "StreamArnError",
    "StreamSource",
    "lease_condition",
    "resolve_stream_arn",
    "shard_row",
    "shard_rows",
    "unowned_shards",
]


def lease_condition(lease: Lease, now: float) -> str:
    """The lease as `esm status` names it: "held" (an owner renews it), "expired" (its owner
    stopped renewing and nobody took it yet) or "free" (never taken, or released)."""
    if lease.owner is None:
        return "free"
    return "expired" if lease.is_expired(now) else "held"


def unowned_shards(leases: Sequence[Lease], now: float) -> int:
    """How many unfinished shards have no owner now: their lease is "free" or "expired"."""
    return sum(1 for lease in leases if not lease.is_finished and lease_condition(lease, now) != "held")


def shard_rows(
    leases: Sequence[Lease],
    reports: Mapping[str, Mapping[str, Any]],
    now: float,
    losses: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One JSON-able row per lease, in the lease table's order, merged with the live owner's report
    and with the recorded data losses (esm.stores.status.data_loss_key), which outlive owners."""
    losses = losses or {}
    return [
        shard_row(
            lease, reports.get(lease.shard_id, {}), now, losses.get(lease.shard_id, {}).get("data_lost_at")
        )
        for lease in leases
    ]


def shard_row(
    lease: Lease, report: Mapping[str, Any], now: float, recorded_loss: float | None = None
) -> dict[str, Any]:
    condition = lease_condition(lease, now)
    owner = lease.owner if condition == "held" else None
    live = report if owner is not None and report.get("owner") == owner else {}
    return {
        "shard_id": lease.shard_id,
        "parents": list(lease.parent_shard_ids),
        "owner": owner,
        "lease": condition,
        "lease_expires_in_seconds": round(lease.expires_at - now, 3) if owner is not None else None,
        "checkpoint": lease.checkpoint,
        "state": live.get("state"),
        "lanes": live.get("lanes"),
        "buffered": live.get("buffered"),
        "in_flight": live.get("in_flight"),
        "millis_behind_latest": live.get("millis_behind_latest"),
        "last_processing_result": live.get("last_processing_result"),
        "last_error": live.get("last_error"),
        "data_lost_at": live.get("data_lost_at") or recorded_loss,
    }
