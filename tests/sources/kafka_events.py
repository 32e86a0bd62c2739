"""What a Kafka group reader tells the event loop, recorded for the reader tests."""

from typing import Any

from esm.ownership.kafka_assignment import PartitionAssignment


class Collector:
    """Records what the reader tells the event loop."""

    def __init__(self) -> None:
        self.assigned: list[PartitionAssignment] = []
        self.revoked: list[PartitionAssignment] = []
        self.records: dict[int, list[Any]] = {}
        self.commits = 0
        self.lag: int | None = None

    def partitions_assigned(self, assignments: list[PartitionAssignment]) -> None:
        self.assigned.extend(assignments)

    def partitions_revoked(self, assignments: list[PartitionAssignment]) -> None:
        self.revoked.extend(assignments)

    def records_fetched(self, assignment: PartitionAssignment, records: list[Any], sizes: list[int]) -> None:
        self.records.setdefault(assignment.tp.partition, []).extend(records)

    def lag_measured(self, total_lag: int) -> None:
        self.lag = total_lag

    def committed(self, count: int, failed: bool) -> None:
        self.commits += count

    def total(self) -> int:
        return sum(len(r) for r in self.records.values())
