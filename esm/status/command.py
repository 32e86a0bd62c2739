"""`esm status -c FILE`: where each mapping stands, as a table or --json.

- Kafka: the shard reports live pollers publish to the store, merged with the positions Kafka
  holds, per partition ("partitions").
- Kinesis / DynamoDB Streams: the mapping's lease table merged with the live owners' reports,
  per shard ("stream", "shards"; see esm.status.stream_leases). A DynamoDB table ARN is resolved
  to its stream first; a failure to resolve is the mapping's "error", not the command's.

The table stays within 120 columns for the usual shard ids and host names: long sequence numbers
are abbreviated (JSON has them whole) and details go on indented lines under their shard.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from esm.client_logs import command_logging
from esm.config import (
    ConfigError,
    EsmConfig,
    EventSourceMappingConfig,
    KafkaSource,
    load_config,
    parse_mapping,
)
from esm.config.sources import DynamoDBStreamsSource, KinesisSource
from esm.ownership.leases import SHARD_END, lease_namespace
from esm.sources.aws_clients import QUICK
from esm.status.kafka_positions import KafkaPositionsError, PartitionPosition, kafka_positions
from esm.status.stream_leases import StreamArnError, StreamSource, resolve_stream_arn, shard_rows
from esm.stores import Store, StoreError, open_store
from esm.stores.status import data_loss_key

TABLE_WIDTH = 120
# The table shows a long sequence number as "..." + its last SEQUENCE_TAIL digits.
SEQUENCE_TAIL = 12
STREAM_COLUMNS = ("shard", "owner", "lease", "checkpoint", "state", "in flight", "behind", "result")
# When the whole row is wider than the table, only the first NARROW_COLUMNS stay in it.
NARROW_COLUMNS = 5
RIGHT_ALIGNED = frozenset({"lease", "in flight", "behind"})
# How long reading a mapping's partitions and offsets from Kafka may take: `esm status` answers
# within seconds when the brokers are down (mappings are read side by side).
KAFKA_TIMEOUT_SECONDS = 2.0


def status_command(config_path: str, as_json: bool) -> int:
    command_logging()  # what could not be reached is the mapping's entry, not kafka-python's lines
    try:
        config = load_config(config_path).config
    except ConfigError as err:
        print(f"esm: {config_path} is not a valid config:\n{err}", file=sys.stderr)
        return 1
    try:
        mappings = asyncio.run(collect(config))
    except StoreError as err:
        print(f"esm: {err}", file=sys.stderr)
        return 2
    if as_json:
        print(orjson.dumps(mappings, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(mappings))
    return 0


async def collect(config: EsmConfig) -> list[dict[str, Any]]:
    store = open_store(config.Store)
    try:
        found = await mappings_of(config, store)
        return list(
            await asyncio.gather(*(collect_mapping(store, mapping, state) for mapping, state in found))
        )
    finally:
        await store.close()


async def mappings_of(config: EsmConfig, store: Store | None) -> list[tuple[EventSourceMappingConfig, str]]:
    """The config file's mappings, then those created through the control API (with their state),
    which only the store knows."""
    found = [
        (mapping, "Enabled" if mapping.Enabled else "Disabled") for mapping in config.EventSourceMappings
    ]
    for stored in await store.mappings.list() if store is not None else ():
        try:
            found.append((parse_mapping(stored.document), stored.state))
        except ConfigError:
            continue  # written by a daemon whose version accepts it; `esm run` says why it is not run
    return found


async def collect_mapping(
    store: Store | None,
    mapping: EventSourceMappingConfig,
    state: str,
    kafka_timeout_s: float = KAFKA_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """One mapping's entry: its partitions or shards as the owners report them to `store`, merged
    with what Kafka or the lease table holds. A source that cannot be read is the entry's "error";
    a store that cannot be read raises StoreError. Without a store (the status page's when it
    cannot reach it) a Kafka mapping still shows its partitions, without the owners' reports."""
    entry = mapping_header(mapping, state)
    source = mapping.source
    reports = {} if store is None else await store.status.read(mapping.uuid, time.time())
    if isinstance(source, KinesisSource | DynamoDBStreamsSource):
        if store is None:
            entry.update(event_source_arn=source.arn, stream=None, shards=[])
            entry["error"] = "the lease table is unavailable (no store)"
        else:
            await _add_stream_shards(entry, store, mapping.uuid, source, reports)
    else:
        entry["partitions"] = []
        if isinstance(source, KafkaSource):
            await _add_kafka_partitions(entry, source, reports, kafka_timeout_s)
    note = unowned_note(entry) if store is not None and state == "Enabled" else None
    if note is not None:
        entry["note"] = note
    return entry


def mapping_header(mapping: EventSourceMappingConfig, state: str) -> dict[str, Any]:
    """What every mapping's entry starts with: its UUID, function and state."""
    return {"uuid": mapping.uuid, "function": mapping.function_name, "state": state}


def unowned_note(entry: Mapping[str, Any]) -> str | None:
    """The note of an enabled mapping none of whose partitions or (unfinished) shards an esm
    poller owns: silence would hide that nothing is being read."""
    if "shards" in entry:
        what, waits_for = "shards", "leases to expire (LeaseDurationSeconds)"
        rows = [row for row in entry["shards"] if row["checkpoint"] != SHARD_END]
    else:
        what, waits_for = (
            "partitions",
            f"group coordinator of group {entry.get('consumer_group')} to assign them",
        )
        rows = entry["partitions"]
    if not rows or any(row["owner"] for row in rows):
        return None
    return (
        f"no esm poller owns any of its {len(rows)} {what}: no daemon runs this mapping, or it "
        f"waits for the {waits_for}; the daemon's log says which"
    )


async def _add_kafka_partitions(
    entry: dict[str, Any], source: KafkaSource, reports: Mapping[str, Mapping[str, Any]], timeout_s: float
) -> None:
    entry.update(topic=source.topic, consumer_group=source.consumer_group_id)
    try:
        positions = await asyncio.to_thread(
            kafka_positions,
            list(source.bootstrap_servers),
            source.topic,
            source.consumer_group_id,
            timeout_s,
        )
    except KafkaPositionsError as err:
        entry["error"] = str(err)
        positions = []
    now = time.time()
    for position in positions:
        entry["partitions"].append(partition_row(position, reports.get(str(position.partition), {}), now))


def partition_row(position: PartitionPosition, report: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One partition as Kafka holds it now, merged with its owner's last report (if any)."""
    stale = report_is_stale(report, now)
    # A stale owner's figures are not mixed with the others: only its name and age show.
    live = {} if stale else report
    # The committed offset beside a batch in flight is the owner's, from the same moment.
    committed = live.get("committed", position.committed) if live else position.committed
    return {
        "partition": position.partition,
        "owner": report.get("owner"),
        "owner_stale": stale,
        "report_age_seconds": _report_age(report, now),
        "shard_state": live.get("state"),
        "committed": committed,
        "end": position.end,
        "lag": None if position.end is None else max(0, position.end - (committed or 0)),
        "lanes": live.get("lanes"),
        "in_flight": live.get("in_flight"),
        "retries": live.get("retries"),
        "last_processing_result": live.get(
            "last_processing_result", "No records processed" if not report else None
        ),
        "last_error": live.get("last_error"),
    }


def report_is_stale(report: Mapping[str, Any], now: float) -> bool:
    """Whether an owner's report is older than its group session: by then the group may have
    given the partition to another member (or the owner fenced itself), so it is not current."""
    age = _report_age(report, now)
    session = report.get("session_seconds")
    return age is not None and isinstance(session, int | float) and age > session


def _report_age(report: Mapping[str, Any], now: float) -> float | None:
    reported_at = report.get("reported_at")
    return round(now - reported_at, 1) if isinstance(reported_at, int | float) else None


async def _add_stream_shards(
    entry: dict[str, Any],
    store: Store,
    mapping_id: str,
    source: StreamSource,
    reports: Mapping[str, Mapping[str, Any]],
) -> None:
    entry.update(event_source_arn=source.arn, stream=None, shards=[])
    try:
        stream_arn = await asyncio.to_thread(resolve_stream_arn, source, QUICK)
    except StreamArnError as err:
        entry["error"] = str(err)
        return
    entry["stream"] = stream_arn
    leases = await store.leases.list(lease_namespace(mapping_id, stream_arn))
    now = time.time()
    losses = await store.status.read(data_loss_key(mapping_id), now)
    entry["shards"] = shard_rows(leases, reports, now, losses)


# -- the table -----------------------------------------------------------------------------------


def render(mappings: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for mapping in mappings:
        lines += _stream_lines(mapping) if "shards" in mapping else _kafka_lines(mapping)
        lines.append("")
    return "\n".join(lines).rstrip() or "no mappings"


def _kafka_lines(mapping: Mapping[str, Any]) -> list[str]:
    lines = [
        f"mapping {mapping['uuid']}  function {mapping['function']}  {mapping['state']}"
        + (f"  topic {mapping['topic']}  group {mapping['consumer_group']}" if "topic" in mapping else "")
    ]
    lines += _problem_lines(mapping)
    lines.append(
        f"  {'part':>4}  {'owner':<24} {'committed':>10} {'end':>10} {'lag':>8}  "
        f"{'in flight':<16} {'retry':>5}  result"
    )
    for p in mapping["partitions"]:
        flight_text = _offsets_in_flight(p["in_flight"])
        owner = (p["owner"] or "-") if not p.get("owner_stale") else f"{p['owner']} STALE"
        result = p["last_processing_result"] or "-"
        lines.append(
            f"  {p['partition']:>4}  {owner:<24} {_num(p['committed']):>10} {_num(p['end']):>10} "
            f"{_num(p['lag']):>8}  {flight_text:<16} {_num(p['retries']):>5}  {result}"
        )
        if p.get("owner_stale"):
            lines.append(
                f"        ! {p['owner']} last reported {p['report_age_seconds']}s ago, longer than its "
                "session: it may no longer own this partition (a newer owner reports within a second)"
            )
        if p["last_error"]:
            lines.append(f"        last error: {p['last_error']}")
    return lines


def _problem_lines(mapping: Mapping[str, Any]) -> list[str]:
    return [f"  ! {mapping[key]}" for key in ("error", "note") if key in mapping]


def _offsets_in_flight(in_flight: Any) -> str:
    """The lowest batch in flight (first-last offsets), and how many more lanes have one."""
    batches = [batch for batch in in_flight or () if isinstance(batch, Mapping)]
    if not batches:
        return "-"
    lowest = min(batches, key=lambda batch: int(batch.get("first", 0)))
    more = f" +{len(batches) - 1}" if len(batches) > 1 else ""
    return f"{lowest.get('first')}-{lowest.get('last')}{more}"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _stream_lines(mapping: Mapping[str, Any]) -> list[str]:
    lines = [f"mapping {mapping['uuid']}  function {mapping['function']}  {mapping['state']}"]
    if mapping["stream"] != mapping["event_source_arn"]:
        lines.append(f"  table  {mapping['event_source_arn']}")
    lines.append(f"  stream {mapping['stream'] or '-'}")
    lines += _problem_lines(mapping)
    shards: Sequence[Mapping[str, Any]] = mapping["shards"]
    if not shards and "error" not in mapping:
        lines.append("  no shards yet: no poller has listed this stream's shards")
    if not shards:
        return lines
    cells = [_stream_cells(shard) for shard in shards]
    widths = [max(len(row[i]) for row in [STREAM_COLUMNS, *cells]) for i in range(len(STREAM_COLUMNS))]
    # Long shard ids (DynamoDB's) and host names: what does not fit goes under each shard.
    in_row = len(STREAM_COLUMNS) if len(_row(STREAM_COLUMNS, widths)) <= TABLE_WIDTH else NARROW_COLUMNS
    lines.append(_row(STREAM_COLUMNS[:in_row], widths))
    for shard, row in zip(shards, cells, strict=True):
        line = _row(row[:in_row], widths)
        below = [pair for pair in zip(STREAM_COLUMNS[in_row:], row[in_row:], strict=True) if pair[1] != "-"]
        if in_row == len(STREAM_COLUMNS) and len(line) > TABLE_WIDTH:  # a long result, the last column
            line, below = _row(row[:-1], widths), [(STREAM_COLUMNS[-1], row[-1])]
        lines.append(line)
        lines += [f"    {detail}" for detail in _shard_details(shard, below)]
    return lines


def _stream_cells(shard: Mapping[str, Any]) -> tuple[str, ...]:
    left = shard["lease_expires_in_seconds"]
    return (
        shard["shard_id"],
        shard["owner"] or "-",
        shard["lease"] if left is None else _seconds(left),
        abbreviate_sequence(shard["checkpoint"]),
        shard["state"] or "-",
        _records_in_flight(shard["in_flight"]),
        millis_text(shard["millis_behind_latest"]),
        shard["last_processing_result"] or "-",
    )


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [
        cell.rjust(width) if column in RIGHT_ALIGNED else cell.ljust(width)
        for cell, width, column in zip(cells, widths, STREAM_COLUMNS, strict=False)
    ]
    return ("  " + "  ".join(padded)).rstrip()


def _shard_details(shard: Mapping[str, Any], below: Sequence[tuple[str, str]]) -> list[str]:
    """The lines under a shard's row: data lost first, then the columns that did not fit."""
    details = []
    if shard["data_lost_at"] is not None:
        details.append(
            f"! DATA LOST at {_utc(shard['data_lost_at'])}: records expired (stream retention) "
            "before they were read"
        )
    if below:
        details.append(", ".join(f"{column}: {cell}" for column, cell in below))
    if shard["parents"]:
        details.append(f"parents: {', '.join(shard['parents'])}")
    if shard["last_error"]:
        details.append(f"last error: {shard['last_error']}")
    return details


def abbreviate_sequence(sequence: str | None) -> str:
    """A checkpoint as the table shows it: "-" before the first, SHARD_END, or the sequence
    number, as "..." + its last SEQUENCE_TAIL digits when longer than that would be."""
    if sequence is None:
        return "-"
    if sequence == SHARD_END or len(sequence) <= SEQUENCE_TAIL + 3:
        return sequence
    return "..." + sequence[-SEQUENCE_TAIL:]


def millis_text(millis: int | None) -> str:
    """MillisBehindLatest in the largest unit that keeps it short: 850ms, 12.5s, 3.2m, 26.0h."""
    if millis is None:
        return "-"
    if millis < 1000:
        return f"{millis}ms"
    for unit, size in (("s", 1000), ("m", 60_000)):
        if millis < size * 60:
            return f"{millis / size:.1f}{unit}"
    return f"{millis / 3_600_000:.1f}h"


def _seconds(seconds: float) -> str:
    return f"{max(seconds, 0.0):.1f}s"


def _records_in_flight(in_flight: Any) -> str:
    """The records of the batches in flight, over every lane; "-" without an owner's report."""
    if not isinstance(in_flight, list):
        return "-"
    return str(sum(int(batch.get("records", 0)) for batch in in_flight if isinstance(batch, Mapping)))


def _utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
