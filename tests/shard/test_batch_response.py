"""Lambda's partial batch response rules, one row per recorded AWS scenario and a few more."""

import orjson
import pytest

from esm.shard.batch_response import Verdict, read_batch_response

# The batch: sequence numbers "s0".."s4" at indices 0..4.
BATCH = ["s0", "s1", "s2", "s3", "s4"]


def index_of(identifier: object) -> int | None:
    return BATCH.index(identifier) if identifier in BATCH else None


def body(value: object) -> bytes:
    return orjson.dumps(value)


@pytest.mark.parametrize(
    ("response", "verdict", "first_failed"),
    [
        # complete success (AWS: *_success scenarios)
        (None, Verdict.SUCCEEDED, 0),  # the function returned nothing
        (body(None), Verdict.SUCCEEDED, 0),  # null_success
        (body(""), Verdict.SUCCEEDED, 0),  # empty_string_success
        (body({}), Verdict.SUCCEEDED, 0),  # empty_dict_success
        (body([]), Verdict.SUCCEEDED, 0),  # empty_list_success
        (body({"batchItemFailures": []}), Verdict.SUCCEEDED, 0),  # empty_batch_item_failure_success
        (body({"batchItemFailures": None}), Verdict.SUCCEEDED, 0),  # null_batch_item_failure_success
        (body({"statusCode": 200}), Verdict.SUCCEEDED, 0),  # no failures reported
        # complete failure (AWS: *_failure scenarios)
        (body({"batchItemFailures": [{"itemIdentifier": ""}]}), Verdict.FAILED, 0),
        (body({"batchItemFailures": [{"itemIdentifier": None}]}), Verdict.FAILED, 0),
        (body({"batchItemFailures": [{"foo": "s1"}]}), Verdict.FAILED, 0),  # invalid_key_foo_failure
        (body({"batchItemFailures": [{"foo": None}]}), Verdict.FAILED, 0),  # invalid_key_foo_null_value
        (body({"batchItemFailures": [{"itemIdentifier": "1234"}]}), Verdict.FAILED, 0),  # not present
        (
            body({"batchItemFailures": [{"itemIdentifier": "s2"}, {"itemIdentifier": "nope"}]}),
            Verdict.FAILED,
            0,
        ),
        (body({"batchItemFailures": "s1"}), Verdict.FAILED, 0),
        (body({"batchItemFailures": ["s1"]}), Verdict.FAILED, 0),
        (b"{not json", Verdict.FAILED, 0),
        # partial failure: from the lowest reported record on
        (body({"batchItemFailures": [{"itemIdentifier": "s3"}]}), Verdict.FAILED_FROM, 3),
        (
            body({"batchItemFailures": [{"itemIdentifier": "s4"}, {"itemIdentifier": "s1"}]}),
            Verdict.FAILED_FROM,
            1,
        ),
        (body({"batchItemFailures": [{"itemIdentifier": "s0"}]}), Verdict.FAILED_FROM, 0),
    ],
)
def test_verdict(response: bytes | None, verdict: Verdict, first_failed: int) -> None:
    result = read_batch_response(response, index_of)
    assert result.verdict is verdict
    if verdict is Verdict.FAILED_FROM:
        assert (result.verdict, result.first_failed) == (Verdict.FAILED_FROM, first_failed)
    if verdict is Verdict.FAILED:
        assert result.reason


@pytest.mark.parametrize(
    ("failures", "reported"),
    [
        (["s3"], 1),
        (["s4", "s1"], 2),
        (["s2", "s2", "s3"], 2),  # the same record named twice counts once
    ],
)
def test_counts_the_records_reported_failed(failures: list[str], reported: int) -> None:
    response = read_batch_response(
        body({"batchItemFailures": [{"itemIdentifier": f} for f in failures]}), index_of
    )
    assert response.reported == reported
