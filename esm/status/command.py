"""`esm status -c FILE`: reads the shard reports live pollers publish to the store and the
positions Kafka holds, and shows them per mapping and partition (a table, or --json)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson

from esm.config import ConfigError, EsmConfig, KafkaSource, load_config
from esm.status.kafka_positions import KafkaPositionsError, kafka_positions
from esm.stores import StoreError, open_store


def status_command(config_path: str, as_json: bool) -> int:
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
        out = []
        for mapping in config.EventSourceMappings:
            entry: dict[str, Any] = {
                "uuid": mapping.uuid,
                "function": mapping.function_name,
                "state": "Enabled" if mapping.Enabled else "Disabled",
                "partitions": [],
            }
            source = mapping.source
            reports = await store.status.read(mapping.uuid, time.time())
            if isinstance(source, KafkaSource):
                entry.update(topic=source.topic, consumer_group=source.consumer_group_id)
                try:
                    positions = await asyncio.to_thread(
                        kafka_positions,
                        list(source.bootstrap_servers),
                        source.topic,
                        source.consumer_group_id,
                    )
                except KafkaPositionsError as err:
                    entry["error"] = str(err)
                    positions = []
                for position in positions:
                    report = reports.get(str(position.partition), {})
                    entry["partitions"].append(
                        {
                            "partition": position.partition,
                            "owner": report.get("owner"),
                            "shard_state": report.get("state"),
                            "committed": position.committed,
                            "end": position.end,
                            "lag": position.lag,
                            "in_flight": report.get("in_flight"),
                            "retries": report.get("retries"),
                            "last_processing_result": report.get(
                                "last_processing_result", "No records processed" if not report else None
                            ),
                            "last_error": report.get("last_error"),
                        }
                    )
            out.append(entry)
        return out
    finally:
        await store.close()


def render(mappings: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for mapping in mappings:
        lines.append(
            f"mapping {mapping['uuid']}  function {mapping['function']}  {mapping['state']}"
            + (f"  topic {mapping['topic']}  group {mapping['consumer_group']}" if "topic" in mapping else "")
        )
        if "error" in mapping:
            lines.append(f"  ! {mapping['error']}")
        lines.append(
            f"  {'part':>4}  {'owner':<24} {'committed':>10} {'end':>10} {'lag':>8}  "
            f"{'in flight':<16} {'retry':>5}  result"
        )
        for p in mapping["partitions"]:
            flight = p["in_flight"]
            flight_text = f"{flight['first']}-{flight['last']}" if flight else "-"
            owner = p["owner"] or "-"
            result = p["last_processing_result"] or "-"
            lines.append(
                f"  {p['partition']:>4}  {owner:<24} {_num(p['committed']):>10} {_num(p['end']):>10} "
                f"{_num(p['lag']):>8}  {flight_text:<16} {_num(p['retries']):>5}  {result}"
            )
            if p["last_error"]:
                lines.append(f"        last error: {p['last_error']}")
        lines.append("")
    return "\n".join(lines).rstrip() or "no mappings"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)
