import base64

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from esm.events.kafka import KafkaEventBuilder, estimated_entry_size, event_record, unreadable_record

ENTRIES = [
    event_record(
        "orders",
        3,
        15,
        1545084650987,
        "CREATE_TIME",
        b"recordKey",
        b'{"key":"value"}',
        [("headerKey", b"headerValue")],
    ),
    event_record("orders", 3, 16, 1545084650988, "LOG_APPEND_TIME", None, None, None),
]


def test_event_has_lambdas_self_managed_kafka_shape() -> None:
    event = orjson.loads(KafkaEventBuilder(["b1:9092", "b2:9092"]).build("orders-3", ENTRIES))
    assert event == {
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": "b1:9092,b2:9092",
        "records": {
            "orders-3": [
                {
                    "topic": "orders",
                    "partition": 3,
                    "offset": 15,
                    "timestamp": 1545084650987,
                    "timestampType": "CREATE_TIME",
                    "key": "cmVjb3JkS2V5",
                    "value": "eyJrZXkiOiJ2YWx1ZSJ9",
                    "headers": [{"headerKey": [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101]}],
                },
                {
                    "topic": "orders",
                    "partition": 3,
                    "offset": 16,
                    "timestamp": 1545084650988,
                    "timestampType": "LOG_APPEND_TIME",
                    "value": None,
                    "headers": [],
                },
            ]
        },
    }


def test_powertools_reads_the_event() -> None:
    event = KafkaEvent(orjson.loads(KafkaEventBuilder(["b1:9092"]).build("orders-3", ENTRIES[:1])))
    record = next(event.records)
    assert record.decoded_key == b"recordKey"
    assert record.json_value == {"key": "value"}
    assert record.decoded_headers == {"headerKey": b"headerValue"}
    assert event.decoded_bootstrap_servers == ["b1:9092"]


@pytest.mark.parametrize(
    "entry",
    [
        event_record("orders", 3, 2**62, 2**62, "LOG_APPEND_TIME", None, b"v" * 100, None),  # the common one
        event_record("orders", 3, 2**62, 2**62, "LOG_APPEND_TIME", None, None, None),  # a keyless tombstone
        event_record("orders", 3, 7, 1, "CREATE_TIME", b"k" * 30, b"v" * 100, None),
        event_record("orders", 3, 7, 1, "CREATE_TIME", None, b"v", [("h\u2028", b"\x00" * 9)]),
        event_record("orders", 3, 7, 1, "CREATE_TIME", b"", b"", [("a", None), ("b", b"")]),
        unreadable_record("orders", 3, 7, 1, "CREATE_TIME", None, b"v" * 10, "header name \u00ff" * 20),
        unreadable_record("orders", 3, 7, 1, "CREATE_TIME", b"k", None, "why"),
    ],
    ids=["keyless", "tombstone", "keyed", "headers", "empty", "unreadable-keyless", "unreadable-keyed"],
)
def test_size_estimate_bounds_each_kind_of_entry(entry: dict[str, object]) -> None:
    assert len(orjson.dumps(entry)) + 1 <= estimated_entry_size(entry)  # + the comma after it


def test_size_estimate_is_an_upper_bound_of_the_json() -> None:
    value = bytes(range(256)) * 40
    entry = event_record(
        "t", 0, 123456789, 1700000000000, "CREATE_TIME", b"k" * 100, value, [("h", b"\xff" * 50)]
    )
    one_record_json = orjson.dumps(entry)
    assert len(one_record_json) <= estimated_entry_size(entry)
    assert estimated_entry_size(entry) < len(one_record_json) * 1.2
    assert base64.b64decode(orjson.loads(one_record_json)["value"]) == value
