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

from binascii import b2a_base64
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
    """One record from boto3's `get_records` ({"SequenceNumber", "ApproximateArrivalTimestamp":
    datetime, "Data": bytes, "PartitionKey", ...}) as Lambda's Kinesis event shows it.

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
    if isinstance(data, bytes):
        payload["data"] = b2a_base64(data, newline=False).decode("ascii")
    # Kinesis keeps arrival times to the millisecond; Lambda sends seconds with 3 decimals.
    payload["approximateArrivalTimestamp"] = (
        round(arrival.timestamp(), 3) if isinstance(arrival, datetime) else read_at
    )
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
    if isinstance(data, bytes) and isinstance(partition_key, str) and isinstance(arrival, datetime):
        return entry
    problems = [
        f"{field} must be {kind.__name__}, got {type(value).__name__}"
        for field, value, kind in (
            ("Data", data, bytes),
            ("PartitionKey", partition_key, str),
            (_ARRIVAL, arrival, datetime),
        )
        if not isinstance(value, kind)
    ]
    return mark_unreadable(entry, f"Kinesis record {where}: {'; '.join(problems)}")


_ARRIVAL = "ApproximateArrivalTimestamp"


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
