"""Lambda's Kinesis event shape.

    {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey", "sequenceNumber",
                              "data": base64, "approximateArrivalTimestamp": float seconds},
                  "eventSource": "aws:kinesis", "eventVersion": "1.0",
                  "eventID": "<shardId>:<sequenceNumber>", "eventName": "aws:kinesis:record",
                  "invokeIdentityArn", "awsRegion", "eventSourceARN"}]}

Keys come in the order Lambda delivers them. The shard reader turns each record boto3's
`kinesis.get_records` returned into its event entry once (`event_record`); a batch's event is
then those entries under "Records" (`KinesisEventBuilder.build`).
"""

from __future__ import annotations

import binascii
import math
from binascii import a2b_base64, b2a_base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from esm.events.unreadable import UNREADABLE, mark_unreadable, valid_text

# One record as the event carries it (the dict `event_record` makes).
EventRecord = dict[str, Any]

KINESIS_SCHEMA_VERSION = "1.0"
EVENT_SOURCE = "aws:kinesis"
EVENT_VERSION = "1.0"
EVENT_NAME = "aws:kinesis:record"

# JSON of one entry beyond its variable strings: field names, fixed values, punctuation, the
# timestamp and the comma between entries.
_ENTRY_OVERHEAD_BYTES = 300
# A JSON string escape is at most 6 bytes (\u00XX) per character, UTF-8 at most 4.
_MAX_JSON_BYTES_PER_CHAR = 6


@dataclass(frozen=True)
class KinesisShardOrigin:
    """What every record of one shard's events shares."""

    stream_arn: str
    shard_id: str
    region: str
    # The mapping's execution role as Lambda names it; esm has no IAM, so it is configured.
    invoke_identity_arn: str


def event_record(record: Mapping[str, Any], origin: KinesisShardOrigin, read_at: float = 0.0) -> EventRecord:
    """One record from `get_records` ({"SequenceNumber", "ApproximateArrivalTimestamp",
    "Data", "PartitionKey", ...}) as Lambda's Kinesis event shows it. boto3 hands over Data as
    bytes and the arrival as a datetime; the lean client (esm.sources.aws_json) as on the wire,
    base64 text and epoch seconds: both are taken.

    A record with a malformed field gets an entry marked unreadable (esm.events.unreadable) with
    what could be read; `read_at` (epoch seconds) stands in for an arrival time it lacks. A
    record without a sequence number has no place in the shard: ValueError. A partition key with
    unpaired surrogates is delivered with U+FFFD in their place (`valid_text`)."""
    sequence_number = _required(record, "SequenceNumber", str, origin)
    where = f"{origin.shard_id}:{sequence_number}"
    data, partition_key, arrival = record.get("Data"), record.get("PartitionKey"), record.get(_ARRIVAL)
    payload: dict[str, Any] = {
        "kinesisSchemaVersion": KINESIS_SCHEMA_VERSION,
        "partitionKey": valid_text(partition_key) if isinstance(partition_key, str) else "",
        "sequenceNumber": sequence_number,
    }
    data_text, data_problem = _data_text(data)
    if data_text is not None:
        payload["data"] = data_text
    # Kinesis keeps arrival times to the millisecond; Lambda sends seconds with 3 decimals.
    arrival_seconds = _epoch_seconds(arrival)
    payload["approximateArrivalTimestamp"] = read_at if arrival_seconds is None else round(arrival_seconds, 3)
    entry = {
        "kinesis": payload,
        "eventSource": EVENT_SOURCE,
        "eventVersion": EVENT_VERSION,
        "eventID": where,
        "eventName": EVENT_NAME,
        "invokeIdentityArn": origin.invoke_identity_arn,
        "awsRegion": origin.region,
        "eventSourceARN": origin.stream_arn,
    }
    problems = [data_problem] if data_problem else []
    problems += [
        f"{field} must be {wanted}, got {type(value).__name__}"
        for field, value, ok, wanted in (
            ("PartitionKey", partition_key, isinstance(partition_key, str), "str"),
            (_ARRIVAL, arrival, arrival_seconds is not None, "a datetime or epoch seconds"),
        )
        if not ok
    ]
    if not problems:
        return entry
    return mark_unreadable(entry, f"Kinesis record {where}: {'; '.join(problems)}")


_ARRIVAL = "ApproximateArrivalTimestamp"


def _data_text(data: object) -> tuple[str | None, str | None]:
    """The record's data as the event's base64 text, or why it cannot be."""
    if isinstance(data, bytes):
        return b2a_base64(data, newline=False).decode("ascii"), None
    if isinstance(data, str):
        try:
            a2b_base64(data, strict_mode=True)
        except binascii.Error as err:
            return None, f"Data is not valid base64 ({err})"
        return data, None
    return None, f"Data must be bytes or base64 text, got {type(data).__name__}"


def _epoch_seconds(arrival: object) -> float | None:
    if isinstance(arrival, datetime):
        return arrival.timestamp()
    if isinstance(arrival, (int, float)) and not isinstance(arrival, bool) and math.isfinite(arrival):
        return float(arrival)
    return None


def _required(record: Mapping[str, Any], field: str, kind: type, origin: KinesisShardOrigin) -> Any:
    value = record.get(field)
    if not isinstance(value, kind):
        raise ValueError(
            f"Kinesis record in shard {origin.shard_id} of {origin.stream_arn}: {field} must be "
            f"{kind.__name__}, got {type(value).__name__}"
        )
    return value


def estimated_entry_size(entry: EventRecord) -> int:
    """An upper bound of the entry's bytes in the event JSON (for the 6 MB cut)."""
    payload = entry["kinesis"]
    # Base64 data, sequence numbers, shard ids, ARNs and regions are plain ASCII; only the
    # partition key is free Unicode text that JSON may escape.
    return (
        _ENTRY_OVERHEAD_BYTES
        + len(payload.get("data", ""))
        + len(payload["sequenceNumber"])
        + _MAX_JSON_BYTES_PER_CHAR * len(payload["partitionKey"])
        + len(entry["eventID"])
        + len(entry["invokeIdentityArn"])
        + len(entry["awsRegion"])
        + len(entry["eventSourceARN"])
        + _MAX_JSON_BYTES_PER_CHAR * len(entry.get(UNREADABLE, ""))
    )


class KinesisEventBuilder:
    """Builds the invocation payload for one shard's batch."""

    def build(self, entries: Sequence[EventRecord]) -> bytes:
        return orjson.dumps({"Records": entries})
