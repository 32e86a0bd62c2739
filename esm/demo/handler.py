"""The demo's function: a Lambda Python handler for a Kafka event of JSON orders.

It runs unchanged on AWS Lambda (a self-managed Kafka trigger) and under `esm worker`:

    esm worker esm.demo.handler.handler --listen 127.0.0.1:50051

Per invocation it decodes every record (base64 JSON), checks it, totals each order and the
revenue per region, and returns that summary. A malformed order raises: Lambda reports an
unhandled function error and the mapping retries the batch, so a bad record is visible, not
skipped. Tombstones (null values) are counted and skipped.

When ESM_DEMO_LATENCY_DIR is set (by `esm demo`), it also appends now - the record's timestamp
(the producer's CreateTime, ms) per record to a file of its own there: one file per execution
environment process, so concurrent environments never interleave writes.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

from esm.demo.orders import InvalidOrder, parse_order

LATENCY_DIR_ENV = "ESM_DEMO_LATENCY_DIR"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    received_ms = time.time() * 1000.0
    orders = tombstones = 0
    revenue_by_region: dict[str, int] = {}
    largest: tuple[int, str] = (-1, "")
    latencies: list[float] = []
    for records in (event.get("records") or {}).values():
        for record in records:
            latencies.append(received_ms - float(record["timestamp"]))
            if record.get("value") is None:
                tombstones += 1
                continue
            try:
                order = parse_order(base64.b64decode(record["value"]))
            except InvalidOrder as exc:
                raise InvalidOrder(
                    f"record {record.get('topic')}-{record.get('partition')}@{record.get('offset')}: {exc}"
                ) from exc
            orders += 1
            total = order.total_cents
            revenue_by_region[order.region] = revenue_by_region.get(order.region, 0) + total
            largest = max(largest, (total, order.order_id))
    _record_latencies(latencies)
    return {
        "function": context.function_name,
        "requestId": context.aws_request_id,
        "orders": orders,
        "tombstones": tombstones,
        "revenueCentsByRegion": revenue_by_region,
        "largestOrder": {"orderId": largest[1], "totalCents": largest[0]} if orders else None,
    }


def _record_latencies(latencies: list[float]) -> None:
    directory = os.environ.get(LATENCY_DIR_ENV)
    if not directory or not latencies:
        return
    with (Path(directory) / f"latency-{os.getpid()}.txt").open("a", encoding="ascii") as out:
        out.write("".join(f"{value:.2f}\n" for value in latencies))  # one write per invocation
