"""Views: what a pattern sees of one record, per event source.

Each view is built once per record and decodes the record's base64 data once; all patterns
then run on it. Data that parses as JSON is matched as JSON; UTF-8 text that does not is a
`NotJsonText` (plain-string matches only); anything else is `UNDECODABLE`.
"""

from __future__ import annotations

from binascii import a2b_base64
from collections.abc import Mapping
from typing import Any

import orjson

from esm.filtering.values import UNDECODABLE, NotJsonText


def decode_data(encoded: str | None) -> Any:
    """Base64 record data as a pattern sees it; None (a Kafka tombstone) stays None (JSON null)."""
    if encoded is None:
        return None
    raw = a2b_base64(encoded)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return NotJsonText(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return UNDECODABLE


def kafka_filter_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A Kafka event entry (topic, partition, offset, timestamp, timestampType, key, value,
    headers) with `key` and `value` decoded. An absent key stays absent."""
    view = dict(entry)
    if "key" in entry:
        view["key"] = decode_data(entry["key"])
    if "value" in entry:
        view["value"] = decode_data(entry["value"])
    return view


def kinesis_filter_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A Lambda Kinesis record: its top-level fields (eventName, awsRegion, ...) and, over them,
    the `kinesis` fields (partitionKey, sequenceNumber, ...) with `data` decoded."""
    kinesis: Mapping[str, Any] = record["kinesis"]
    view = {name: value for name, value in record.items() if name != "kinesis"}
    view.update(kinesis)
    view["data"] = decode_data(kinesis.get("data"))
    return view


def dynamodb_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """A Lambda DynamoDB Streams record is its own view: `dynamodb` (typed attribute JSON),
    `eventName`, `awsRegion`, ...; nothing needs decoding."""
    return record
