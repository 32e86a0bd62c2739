"""The partitions a mapping logs as assigned or revoked, in partition order whatever the group's."""

from __future__ import annotations

import pytest

from esm.mappings.kafka import partition_list
from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId


@pytest.mark.parametrize(
    ("given", "logged"),
    [
        ([("orders", 1), ("orders", 0)], "orders-0, orders-1"),
        ([("orders", 10), ("orders", 2)], "orders-2, orders-10"),
        ([("b", 0), ("a", 3)], "a-3, b-0"),
        ([], ""),
    ],
)
def test_partitions_are_listed_in_order(given: list[tuple[str, int]], logged: str) -> None:
    assignments = [
        PartitionAssignment(TopicPartitionId(topic, partition), epoch=1) for topic, partition in given
    ]
    assert partition_list(assignments) == logged
