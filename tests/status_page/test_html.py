"""The status page's HTML from snapshots: what each row shows, escaping, problems, offline use."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from esm.status_page.html import render_body, render_page

KAFKA_MAPPING: dict[str, Any] = {
    "uuid": "u-1",
    "function": "orders",
    "state": "Enabled",
    "source": "Kafka topic orders on 127.0.0.1:9092, group g",
    "topic": "orders",
    "consumer_group": "g",
    "partitions": [
        {
            "partition": 0,
            "owner": "host-a:11",
            "shard_state": "PROCESSING",
            "committed": 30,
            "end": 30,
            "lag": 0,
            "in_flight": [],
            "retries": 0,
            "last_processing_result": "OK",
            "last_error": None,
        },
        {
            "partition": 1,
            "owner": "host-a:11",
            "owner_stale": False,
            "shard_state": "PROCESSING",
            "committed": 10,
            "end": 30,
            "lag": 20,
            "in_flight": [{"first": 10, "last": 14, "records": 5}],
            "retries": 3,
            "last_processing_result": "PROBLEM: Function call failed",
            "last_error": "ValueError: <script>alert(1)</script>",
        },
        {
            "partition": 2,
            "owner": "host-c:5",
            "owner_stale": True,  # its last report is older than its session
            "shard_state": None,
            "committed": 30,
            "end": 30,
            "lag": 0,
            "in_flight": None,
            "retries": None,
            "last_processing_result": None,
            "last_error": None,
        },
    ],
}
STREAM_MAPPING: dict[str, Any] = {
    "uuid": "u-2",
    "function": "clicks",
    "state": "Disabled",
    "source": "arn:aws:kinesis:us-east-1:000000000000:stream/clicks",
    "event_source_arn": "arn:aws:kinesis:us-east-1:000000000000:stream/clicks",
    "stream": "arn:aws:kinesis:us-east-1:000000000000:stream/clicks",
    "shards": [
        {
            "shard_id": "shardId-000000000002",
            "parents": ["shardId-000000000000", "shardId-000000000001"],
            "owner": "host-b:7",
            "lease": "held",
            "lease_expires_in_seconds": 4.25,
            "checkpoint": "49590338271490256608559692538361571095921575989136588802",
            "state": "PROCESSING",
            "lanes": 1,
            "buffered": 0,
            "in_flight": [
                {
                    "first": "49590338271490256608559692538361571095921575989136588905",
                    "last": "49590338271490256608559692538361571095921575989136588906",
                    "records": 2,
                },
                {
                    "first": "49590338271490256608559692538361571095921575989136588803",
                    "last": "49590338271490256608559692538361571095921575989136588803",
                    "records": 1,
                },
            ],
            "millis_behind_latest": 65_000,
            "last_processing_result": "OK",
            "last_error": None,
            "data_lost_at": 1_700_000_000.0,
        },
        {
            "shard_id": "shardId-000000000003",
            "parents": [],
            "owner": None,
            "lease": "free",
            "lease_expires_in_seconds": None,
            "checkpoint": None,
            "state": None,
            "lanes": None,
            "buffered": None,
            "in_flight": None,
            "millis_behind_latest": None,
            "last_processing_result": None,
            "last_error": None,
            "data_lost_at": None,
        },
    ],
}


def snapshot(*mappings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "daemon": {"host": "host-a", "pid": 11, "healthy": True},
        "generated_at": 1_700_000_000.0,
        "gather_seconds": 0.125,
        "unreachable": [],
        "mappings": list(mappings),
        **extra,
    }


class Rows(HTMLParser):
    """Each table row's cells as text, by the row's data-partition or data-shard id and the cell's
    first class: the page read the way the browser test reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr":
            self._row = found.get("data-partition") or found.get("data-shard")
            if self._row is not None:
                self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = (found.get("class") or "").split()[0]
            self.rows[self._row][self._cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data


def rows(html: str) -> dict[str, dict[str, str]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


@pytest.mark.parametrize(
    ("row", "cell", "shown"),
    [
        ("0", "lag", "0"),
        ("0", "state", "PROCESSING"),
        ("0", "owner", "host-a:11"),
        ("0", "in-flight", "-"),
        ("0", "result", "OK"),
        ("0", "error", "-"),
        ("2", "owner", "host-c:5 STALE"),
        ("1", "owner", "host-a:11"),
        ("1", "lag", "20"),
        ("1", "committed", "10"),
        ("1", "end", "30"),
        ("1", "in-flight", "10-14 (5 records)"),
        ("1", "retries", "3"),
        ("1", "result", "PROBLEM: Function call failed"),
        ("1", "error", "ValueError: <script>alert(1)</script>"),
        (
            "shardId-000000000002",
            "shard",
            "shardId-000000000002parents shardId-000000000000, shardId-000000000001",
        ),
        ("shardId-000000000002", "lease", "held (4.2s left)"),
        ("shardId-000000000002", "checkpoint", "...989136588802"),
        ("shardId-000000000002", "in-flight", "3 records in 2 batches, from ...989136588803"),
        ("shardId-000000000002", "lag", "1.1m"),
        (
            "shardId-000000000002",
            "error",
            "DATA LOST at 2023-11-14 22:13:20 UTC: records expired before they were read",
        ),
        ("shardId-000000000003", "owner", "-"),
        ("shardId-000000000003", "lease", "free"),
        ("shardId-000000000003", "checkpoint", "-"),
        ("shardId-000000000003", "lag", "-"),
        ("shardId-000000000003", "in-flight", "-"),
    ],
)
def test_each_row_shows_its_partition_or_shard(row: str, cell: str, shown: str) -> None:
    assert rows(render_body(snapshot(KAFKA_MAPPING, STREAM_MAPPING)))[row][cell] == shown


def test_text_from_errors_is_escaped_not_run() -> None:
    html = render_body(snapshot(KAFKA_MAPPING))
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_mapping_heading_names_function_state_and_source() -> None:
    html = render_body(snapshot(KAFKA_MAPPING, STREAM_MAPPING))
    assert "orders <span class='badge mapping-state Enabled'>Enabled</span>" in html
    assert "clicks <span class='badge mapping-state Disabled'>Disabled</span>" in html
    assert "source: Kafka topic orders on 127.0.0.1:9092, group g" in html
    assert "source: arn:aws:kinesis:us-east-1:000000000000:stream/clicks" in html


def test_what_could_not_be_read_is_listed_and_a_mapping_error_shown() -> None:
    broken = {
        **KAFKA_MAPPING,
        "partitions": [],
        "error": "cannot read 'orders' on 127.0.0.1:1: NoBrokersAvailable",
    }
    html = render_body(
        snapshot(broken, unreachable=["store redis://h:1/0: no answer yet (still connecting)"], stale=True)
    )
    assert "<strong>Could not read:</strong><ul><li>store redis://h:1/0: no answer yet" in html
    assert (
        "<p class=mapping-error>cannot read &#x27;orders&#x27; on 127.0.0.1:1: NoBrokersAvailable</p>" in html
    )
    assert "<p>No partitions known yet.</p>" in html
    assert "<span class=stale>(stale)</span>" in html


def test_a_mapping_nobody_reads_has_its_note_shown() -> None:
    note = "no esm poller owns any of its 2 partitions: no daemon runs this mapping, or it waits ..."
    html = render_body(snapshot({**KAFKA_MAPPING, "note": note}))
    assert f"<p class=mapping-error>{note}</p>" in html


def test_daemon_line_says_health_and_when() -> None:
    html = render_body(snapshot(daemon={"host": "h", "pid": 5, "healthy": False}))
    assert "daemon h (pid 5)" in html and "<span class=healthy-no>not healthy</span>" in html
    assert "updated <time class=updated>2023-11-14 22:13:20 UTC</time> in 0.12s" in html
    assert "<p>No mappings in the config.</p>" in html


def test_the_page_loads_nothing_from_elsewhere_and_refreshes_itself() -> None:
    page = render_page(snapshot(KAFKA_MAPPING))
    assert page.startswith("<!DOCTYPE html>")
    # Offline: no URL with a scheme or host, no external script, style sheet, image or font.
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "@import" not in page and "url(" not in page
    assert "fetch('?part=body'" in page and "setTimeout(refresh, 2000)" in page
    assert f"<div id=status>{render_body(snapshot(KAFKA_MAPPING))}</div>" in page
