"""Lambda's partial batch response rules, one row per shape (issue 10, item 7).

Each row says where its verdict comes from: AWS's recorded scenarios (`recorded`), AWS's
documented success and failure conditions (`documented`), or AWS's "Lambda treats all other
results as a complete failure" for shapes the documentation does not list (`other`). README's
"Partial batch responses" table is this table in words."""

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esm.events.kafka import KafkaEventBuilder
from esm.filtering import compile_filters
from esm.mappings.kafka import KafkaRecordFormat
from esm.shard.batch_response import Verdict, read_batch_response

# A stream batch: sequence numbers "s0".."s4" at indices 0..4.
STREAM_BATCH = ["s0", "s1", "s2", "s3", "s4"]


def stream_index_of(identifier: object) -> int | None:
    """As the stream shards' sources answer: a sequence number (a string) of the batch."""
    return (
        STREAM_BATCH.index(identifier) if isinstance(identifier, str) and identifier in STREAM_BATCH else None
    )


# A Kafka batch of partition "orders-0", offsets 10..14, read through the mapping's own source.
KAFKA_SOURCE = KafkaRecordFormat("orders-0", KafkaEventBuilder(["h:1"]), compile_filters([]))
KAFKA_BATCH = [{"topic": "orders", "partition": 0, "offset": offset} for offset in range(10, 15)]


def kafka_index_of(identifier: object) -> int | None:
    return KAFKA_SOURCE.index_of(KAFKA_BATCH, identifier)


def body(value: object) -> bytes:
    return orjson.dumps(value)


def failures_of(*identifiers: Any) -> bytes:
    return body({"batchItemFailures": [{"itemIdentifier": identifier} for identifier in identifiers]})


SUCCESS, FAILED, FROM = Verdict.SUCCEEDED, Verdict.FAILED, Verdict.FAILED_FROM

STREAM_ROWS = [
    # (response, verdict, first failed, source of the rule)
    (None, SUCCESS, 0, "documented: null response (the function returned nothing)"),
    (body(None), SUCCESS, 0, "recorded: null_success"),
    (body(""), SUCCESS, 0, "recorded: empty_string_success"),
    (body({}), SUCCESS, 0, "recorded: empty_dict_success"),
    (body([]), SUCCESS, 0, "recorded: empty_list_success"),
    (body({"batchItemFailures": []}), SUCCESS, 0, "recorded: empty_batch_item_failure_success"),
    (body({"batchItemFailures": None}), SUCCESS, 0, "recorded: null_batch_item_failure_success"),
    (body({"statusCode": 200}), SUCCESS, 0, "documented: no batchItemFailures is a null list"),
    (failures_of(""), FAILED, 0, "documented: empty string itemIdentifier"),
    (failures_of(None), FAILED, 0, "documented: null itemIdentifier"),
    (body({"batchItemFailures": [{"foo": "s1"}]}), FAILED, 0, "recorded: invalid_key_foo_failure"),
    (body({"batchItemFailures": [{"foo": None}]}), FAILED, 0, "recorded: invalid_key_foo_null_value"),
    (failures_of("1234"), FAILED, 0, "documented: an identifier that names no record"),
    (failures_of("s2", "nope"), FAILED, 0, "documented: one unknown identifier fails them all"),
    (b"{not json", FAILED, 0, "documented: invalid JSON response"),
    (b"NaN", FAILED, 0, "documented: invalid JSON response (NaN is not JSON)"),
    (body([{"itemIdentifier": "s1"}]), FAILED, 0, "other: a top-level list is no EventResponse"),
    (body([{"itemIdentifier": 5}]), FAILED, 0, "other: a top-level list is no EventResponse"),
    (body("ok"), FAILED, 0, "other: a string is no EventResponse"),
    (body(0), FAILED, 0, "other: a number is no EventResponse"),
    (body(False), FAILED, 0, "other: a boolean is no EventResponse"),
    (body({"batchItemFailures": "s1"}), FAILED, 0, "other: batchItemFailures is not a list"),
    (body({"batchItemFailures": {}}), FAILED, 0, "other: batchItemFailures is not a list"),
    (body({"batchItemFailures": ["s1"]}), FAILED, 0, "other: an item is not an object"),
    (failures_of(5), FAILED, 0, "other: a number is no sequence number (they are strings)"),
    (failures_of(["s1"]), FAILED, 0, "other: a list is no sequence number"),
    (failures_of({"partition": "s", "offset": 1}), FAILED, 0, "other: a Kafka identifier on a stream"),
    (failures_of("s3"), FROM, 3, "documented: retried from the reported record"),
    (failures_of("s4", "s1"), FROM, 1, "documented: retried from the lowest reported record"),
    (failures_of("s1", "s1"), FROM, 1, "documented: a record reported twice"),
    (failures_of("s0"), FROM, 0, "documented: the first record failed"),
    (
        body({"batchItemFailures": [{"itemIdentifier": "s2", "reason": "x"}], "extra": 1}),
        FROM,
        2,
        "documented: other keys are not part of the syntax and are ignored",
    ),
]

KAFKA_ROWS = [
    (failures_of({"partition": "orders-0", "offset": 12}), FROM, 2, "documented: Kafka's identifier"),
    (
        failures_of({"partition": "orders-0", "offset": 12}, {"partition": "orders-0", "offset": 10}),
        FROM,
        0,
        "",
    ),
    (failures_of({}), FAILED, 0, "documented: an empty identifier"),
    (failures_of({"partition": "orders-0", "offset": 99}), FAILED, 0, "documented: names no record"),
    (failures_of({"partition": "orders-1", "offset": 12}), FAILED, 0, "documented: another partition"),
    (failures_of({"partition": "orders-0", "offset": "12"}), FAILED, 0, "other: offset must be a number"),
    (failures_of({"partition": "orders-0", "offset": True}), FAILED, 0, "other: true is no offset"),
    (failures_of({"partition": "orders-0"}), FAILED, 0, "other: no offset"),
    (failures_of("orders-0-12"), FAILED, 0, "other: a string is no Kafka identifier"),
    (failures_of(12), FAILED, 0, "other: a bare offset is no Kafka identifier"),
]


def check(response: bytes | None, verdict: Verdict, first_failed: int, index_of: Any) -> None:
    result = read_batch_response(response, index_of)
    assert result.verdict is verdict
    if verdict is Verdict.FAILED_FROM:
        assert result.first_failed == first_failed
    if verdict is Verdict.FAILED:
        assert result.reason


@pytest.mark.parametrize(("response", "verdict", "first_failed", "why"), STREAM_ROWS)
def test_stream_response_shapes(
    response: bytes | None, verdict: Verdict, first_failed: int, why: str
) -> None:
    check(response, verdict, first_failed, stream_index_of)


@pytest.mark.parametrize(("response", "verdict", "first_failed", "why"), KAFKA_ROWS)
def test_kafka_response_shapes(response: bytes | None, verdict: Verdict, first_failed: int, why: str) -> None:
    check(response, verdict, first_failed, kafka_index_of)


def test_a_reason_quotes_a_huge_response_only_in_part() -> None:
    result = read_batch_response(body(["x" * 1_000_000]), stream_index_of)
    assert result.verdict is Verdict.FAILED
    assert result.reason.startswith('the response is not an object with batchItemFailures: ["xxx')
    assert len(result.reason) < 250


@pytest.mark.parametrize(
    ("failures", "reported"),
    [
        (["s3"], 1),
        (["s4", "s1"], 2),
        (["s2", "s2", "s3"], 2),  # the same record named twice counts once
    ],
)
def test_counts_the_records_reported_failed(failures: list[str], reported: int) -> None:
    response = read_batch_response(failures_of(*failures), stream_index_of)
    assert response.reported == reported


# -- any response at all (issue 10, go further) ---------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(STREAM_BATCH),  # identifiers of the batch turn up often
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["itemIdentifier", "batchItemFailures", "x"]) | st.text(max_size=4),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=12,
)
ITEM_FAILURES = st.lists(
    st.one_of(st.fixed_dictionaries({"itemIdentifier": JSON_VALUES}), JSON_VALUES), max_size=4
).map(lambda items: {"batchItemFailures": items})
RESPONSES = st.one_of(
    st.none(),
    st.binary(max_size=40),  # any bytes a worker could return
    st.one_of(JSON_VALUES, ITEM_FAILURES).map(orjson.dumps),
)


def is_documented_success(response: Any) -> bool:
    if response is None or (isinstance(response, str | list | dict) and not response):
        return True
    return isinstance(response, dict) and response.get("batchItemFailures") in (None, [])


@given(RESPONSES)
def test_any_response_gets_a_verdict_that_follows_the_rules(body: bytes | None) -> None:
    result = read_batch_response(body, stream_index_of)  # never raises
    try:
        response = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        assert result.verdict is Verdict.FAILED and result.reason == "the response is not JSON"
        return
    if result.verdict is Verdict.SUCCEEDED:
        assert is_documented_success(response)
    elif result.verdict is Verdict.FAILED_FROM:
        identifiers = [item["itemIdentifier"] for item in response["batchItemFailures"]]
        assert all(isinstance(i, str) and i in STREAM_BATCH for i in identifiers)
        assert result.first_failed == min(STREAM_BATCH.index(i) for i in identifiers)
    else:
        assert not is_documented_success(response) and result.reason
        assert len(result.reason) < 250  # quoted only in part
