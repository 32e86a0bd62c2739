"""The demo's records: JSON orders. Making them (the producer) and reading them (the handler).

Pure functions only, and no heavy imports: the handler imports this module in every execution
environment. Money is in integer cents so totals are exact.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

CUSTOMERS = 50
REGIONS = ("eu-west", "us-east", "ap-south")
_SKUS = ("kbd-01", "mouse-02", "cable-03", "hub-04", "dock-05", "stand-06")


class InvalidOrder(ValueError):
    """A record's value is not a well-formed order; the message names the field."""


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class Order:
    order_id: str
    customer: str
    region: str
    lines: tuple[OrderLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


def customer_key(sequence: int) -> bytes:
    """The record key: orders of one customer share a partition, so they stay in order."""
    return f"customer-{sequence % CUSTOMERS}".encode()


def make_order(sequence: int, rng: random.Random) -> dict[str, Any]:
    """Order number `sequence` as the JSON object the producer sends."""
    lines = [
        {"sku": rng.choice(_SKUS), "quantity": rng.randint(1, 5), "unitPriceCents": rng.randint(199, 9999)}
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "orderId": f"order-{sequence}",
        "customer": customer_key(sequence).decode(),
        "region": REGIONS[sequence % len(REGIONS)],
        "lines": lines,
    }


def encode_order(order: dict[str, Any]) -> bytes:
    return json.dumps(order, separators=(",", ":")).encode()


def parse_order(value: bytes) -> Order:
    """Decode and check one order; InvalidOrder names what is wrong."""
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidOrder(f"the value is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidOrder(f"the value is a JSON {type(body).__name__}, expected an object")
    order_id = _text(body, "orderId", "order")
    raw_lines = body.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise InvalidOrder(f"{order_id}: lines must be a non-empty list, got {raw_lines!r}")
    lines = tuple(_line(order_id, index, raw) for index, raw in enumerate(raw_lines))
    return Order(order_id, _text(body, "customer", order_id), _text(body, "region", order_id), lines)


def _text(body: dict[str, Any], field: str, where: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidOrder(f"{where}: {field} must be a non-empty string, got {value!r}")
    return value


def _line(order_id: str, index: int, raw: object) -> OrderLine:
    where = f"{order_id}: lines[{index}]"
    if not isinstance(raw, dict):
        raise InvalidOrder(f"{where} must be an object, got {raw!r}")
    sku = _text(raw, "sku", where)
    quantity, price = raw.get("quantity"), raw.get("unitPriceCents")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise InvalidOrder(f"{where}.quantity must be a positive integer, got {quantity!r}")
    if not isinstance(price, int) or isinstance(price, bool) or price < 0:
        raise InvalidOrder(f"{where}.unitPriceCents must be a non-negative integer, got {price!r}")
    return OrderLine(sku, quantity, price)
