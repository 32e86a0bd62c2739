"""`esm produce`: send records to a Kafka topic, one per line of standard input."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from kafka.errors import KafkaError

from esm.embedded.topics import KafkaHelperError, OutgoingRecord, produce
from esm.kafka_tools import CONNECT_TIMEOUT_S, error_text


def records_from_lines(lines: Iterable[str], key: str | None) -> Iterator[OutgoingRecord]:
    """One record per non-blank line, its text (without the line end) as the value, UTF-8."""
    encoded_key = key.encode() if key is not None else None
    for line in lines:
        text = line.rstrip("\r\n")
        if text.strip():
            yield OutgoingRecord(value=text.encode(), key=encoded_key)


def produce_command(topic: str, bootstrap_servers: str, key: str | None, lines: TextIO | None = None) -> int:
    """0 when every line was acknowledged by the broker, 1 otherwise."""
    source = lines or sys.stdin
    if source.isatty():
        _say("type one record per line; Ctrl-D sends them")
    try:
        sent = produce(
            bootstrap_servers,
            topic,
            records_from_lines(source, key),
            timeout_s=30.0,
            bootstrap_timeout_s=CONNECT_TIMEOUT_S,
        )
    except (KafkaError, KafkaHelperError) as exc:
        _say(f"cannot send to topic {topic!r} on {bootstrap_servers}: {error_text(exc)}")
        return 1
    _say(f"sent {sent} record{'s' * (sent != 1)} to topic {topic!r} on {bootstrap_servers}")
    return 0


def _say(text: str) -> None:
    print(f"esm produce: {text}", file=sys.stderr, flush=True)
