from __future__ import annotations

import base64
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from esm.demo.handler import LATENCY_DIR_ENV, handler
from esm.demo.orders import InvalidOrder

CONTEXT = SimpleNamespace(function_name="orders", aws_request_id="req-1")


def kafka_record(offset: int, value: bytes | None, timestamp_ms: int) -> dict[str, Any]:
    return {
        "topic": "orders",
        "partition": 0,
        "offset": offset,
        "timestamp": timestamp_ms,
        "timestampType": "CREATE_TIME",
        "value": None if value is None else base64.b64encode(value).decode(),
        "headers": [],
    }


def order(order_id: str, region: str, quantity: int, price: int) -> bytes:
    return (
        f'{{"orderId": "{order_id}", "customer": "c-1", "region": "{region}", '
        f'"lines": [{{"sku": "kbd", "quantity": {quantity}, "unitPriceCents": {price}}}]}}'
    ).encode()


def test_handler_totals_the_orders_and_records_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LATENCY_DIR_ENV, str(tmp_path))
    event = {
        "eventSource": "SelfManagedKafka",
        "records": {
            "orders-0": [
                kafka_record(0, order("o-1", "eu", 2, 500), 1_000),
                kafka_record(1, order("o-2", "us", 1, 2500), 1_000),
                kafka_record(2, order("o-3", "eu", 3, 100), 1_000),
                kafka_record(3, None, 1_000),
            ]
        },
    }
    result = handler(event, CONTEXT)
    assert result["orders"] == 3
    assert result["tombstones"] == 1
    assert result["revenueCentsByRegion"] == {"eu": 1300, "us": 2500}
    assert result["largestOrder"] == {"orderId": "o-2", "totalCents": 2500}
    assert result["requestId"] == "req-1"
    latencies = (tmp_path / f"latency-{os.getpid()}.txt").read_text().split()
    assert len(latencies) == 4
    assert all(float(value) > 0 for value in latencies)  # now is long after 1970 + 1 s


def test_a_bad_record_fails_the_invocation_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LATENCY_DIR_ENV, raising=False)
    event = {"records": {"orders-0": [kafka_record(7, b'{"orderId": "o-9"}', 1_000)]}}
    with pytest.raises(InvalidOrder, match=r"record orders-0@7: o-9: lines must be a non-empty list"):
        handler(event, CONTEXT)
