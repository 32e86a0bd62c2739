"""What a failure record says about its batch, in one line for the replay report (pure).

Records come from a destination that anyone could have written to, so every field is read
defensively: a missing or odd field gives a placeholder, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_STREAM_INFO_KEYS = (("KinesisBatchInfo", "Kinesis"), ("DDBStreamBatchInfo", "DynamoDB Streams"))
_BATCH_INFO_KEYS = ("KafkaBatchInfo", *(key for key, _ in _STREAM_INFO_KEYS))


def not_a_failure_record(record: Mapping[str, Any]) -> str | None:
    """Why `record` is no failure record (an object someone else wrote to the destination), or
    None when it is one: a `requestContext` and a batch info of Kafka, Kinesis or DynamoDB."""
    if isinstance(record.get("requestContext"), Mapping) and any(
        isinstance(record.get(key), Mapping) for key in _BATCH_INFO_KEYS
    ):
        return None
    return (
        "it is not a failure record (one has a requestContext and a KafkaBatchInfo, "
        "KinesisBatchInfo or DDBStreamBatchInfo)"
    )


def record_label(record: Mapping[str, Any]) -> str:
    """`<condition>, <batch summary>`, e.g. `RetryAttemptsExhausted, Kafka t-1 offset 50 (1 record)`."""
    return f"{condition_of(record)}, {batch_summary(record)}"


def condition_of(record: Mapping[str, Any]) -> str:
    """`requestContext.condition` (RetryAttemptsExhausted, RecordAgeExceeded, ...)."""
    context = record.get("requestContext")
    condition = context.get("condition") if isinstance(context, Mapping) else None
    return str(condition) if condition else "unknown condition"


def batch_summary(record: Mapping[str, Any]) -> str:
    """The source partition or shard and the first-last offsets or sequence numbers."""
    kafka = record.get("KafkaBatchInfo")
    if isinstance(kafka, Mapping):
        return _kafka_summary(kafka)
    for key, source in _STREAM_INFO_KEYS:
        info = record.get(key)
        if isinstance(info, Mapping):
            return _stream_summary(source, info)
    return "no batch info"


def _kafka_summary(info: Mapping[str, Any]) -> str:
    partitions = info.get("recordsInfo")
    if not isinstance(partitions, Mapping) or not partitions:
        ranges = "no partitions listed"
    else:
        ranges = "; ".join(_kafka_range(str(key), value) for key, value in partitions.items())
    return f"Kafka {ranges}{_size(info)}"


def _kafka_range(key: str, offsets: Any) -> str:
    if not isinstance(offsets, Mapping):
        return f"{key} offsets unknown"
    first, last = offsets.get("firstRecordOffset", "?"), offsets.get("lastRecordOffset", "?")
    return f"{key} offset {first}" if first == last else f"{key} offsets {first}-{last}"


def _stream_summary(source: str, info: Mapping[str, Any]) -> str:
    shard = info.get("shardId", "?")
    first, last = info.get("startSequenceNumber", "?"), info.get("endSequenceNumber", "?")
    numbers = f"sequence number {first}" if first == last else f"sequence numbers {first}-{last}"
    return f"{source} shard {shard} {numbers}{_size(info)}"


def _size(info: Mapping[str, Any]) -> str:
    size = info.get("batchSize")
    if type(size) is not int:
        return ""
    return f" ({size} record{'s' * (size != 1)})"
