"""The metric children a mapping's shards update (pre-labelled once per mapping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from esm.metrics import Metrics


class _Inc(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class _Set(Protocol):
    def set(self, value: float) -> None: ...


@dataclass(frozen=True)
class ShardMetrics:
    records_invoked: _Inc
    records_delivered: _Inc
    # Buffered or in-flight records left for the next owner (ownership lost).
    records_abandoned: _Inc
    batch_size: _Observe
    retries: _Inc
    iterator_age: _Set
    bisects: _Inc
    records_to_destination: _Inc
    records_dropped_no_destination: _Inc
    records_filtered: _Inc
    destination_failures: _Inc
    records_failed_invoke: _Inc

    @classmethod
    def of_mapping(cls, metrics: Metrics, mapping_id: str) -> ShardMetrics:
        return cls(
            records_invoked=metrics.records_invoked.labels(mapping_id),
            records_delivered=metrics.records_delivered.labels(mapping_id),
            records_abandoned=metrics.records_dropped_on_revoke.labels(mapping_id),
            batch_size=metrics.batch_size.labels(mapping_id),
            retries=metrics.retries.labels(mapping_id),
            iterator_age=metrics.iterator_age.labels(mapping_id),
            bisects=metrics.bisects.labels(mapping_id),
            records_to_destination=metrics.records_to_destination.labels(mapping_id),
            records_dropped_no_destination=metrics.records_dropped.labels(mapping_id),
            records_failed_invoke=metrics.records_failed_invoke.labels(mapping_id),
            records_filtered=metrics.records_filtered.labels(mapping_id),
            destination_failures=metrics.destination_failures.labels(mapping_id),
        )
