from __future__ import annotations

from typing import Any

import pytest

from esm.replay.batch_items import batch_items

KAFKA_EVENT = {
    "eventSource": "SelfManagedKafka",
    "records": {
        "orders-0": [{"offset": 10}, {"offset": 11}],
        "orders-1": [{"offset": 10}],
    },
}


def test_kafka_items_are_found_by_partition_and_offset() -> None:
    items = batch_items(KAFKA_EVENT)
    assert items.index_of({"partition": "orders-0", "offset": 11}) == 1
    assert items.index_of({"partition": "orders-1", "offset": 10}) == 2
    assert items.name(2) == "orders-1 offset 10"


@pytest.mark.parametrize(
    "identifier",
    [
        {"partition": "orders-0", "offset": 12},  # not in the batch
        {"partition": "orders-2", "offset": 10},
        {"partition": "orders-0", "offset": True},  # JSON true is not offset 1... nor 10
        {"partition": "orders-0", "offset": "10"},
        {"offset": 10},
        "orders-0",
        None,
        7,
    ],
)
def test_kafka_identifiers_not_in_the_event_are_not_found(identifier: Any) -> None:
    assert batch_items(KAFKA_EVENT).index_of(identifier) is None


def test_a_boolean_offset_never_matches_offset_one() -> None:
    items = batch_items({"records": {"t-0": [{"offset": 0}, {"offset": 1}]}})
    assert items.index_of({"partition": "t-0", "offset": 1}) == 1
    assert items.index_of({"partition": "t-0", "offset": True}) is None


def test_stream_items_are_found_by_sequence_number() -> None:
    kinesis = {"Records": [{"kinesis": {"sequenceNumber": "a"}}, {"kinesis": {"sequenceNumber": "b"}}]}
    dynamodb = {"Records": [{"dynamodb": {"SequenceNumber": "100"}}]}
    assert batch_items(kinesis).index_of("b") == 1
    assert batch_items(kinesis).name(1) == "sequence number b"
    assert batch_items(dynamodb).index_of("100") == 0
    assert batch_items(dynamodb).index_of({"partition": "x", "offset": 1}) is None


def test_an_unknown_event_shape_has_no_items() -> None:
    items = batch_items({"something": "else"})
    assert items.index_of("a") is None
    assert items.name(0) == "item #0"
