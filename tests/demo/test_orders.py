from __future__ import annotations

import random

import pytest

from esm.demo.orders import InvalidOrder, customer_key, encode_order, make_order, parse_order


def test_a_made_order_reads_back_with_its_total() -> None:
    body = make_order(42, random.Random(1))
    order = parse_order(encode_order(body))
    assert order.order_id == "order-42"
    assert order.customer == customer_key(42).decode() == "customer-42"
    expected = sum(line["quantity"] * line["unitPriceCents"] for line in body["lines"])
    assert order.total_cents == expected > 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"not json", "the value is not JSON"),
        (b"[1, 2]", "the value is a JSON list, expected an object"),
        (b'{"customer": "c", "region": "r", "lines": []}', "order: orderId must be a non-empty string"),
        (
            b'{"orderId": "o-1", "customer": "c", "region": "r", "lines": []}',
            "o-1: lines must be a non-empty",
        ),
        (
            b'{"orderId": "o-1", "customer": "c", "region": "r", '
            b'"lines": [{"sku": "s", "quantity": 0, "unitPriceCents": 5}]}',
            "o-1: lines[0].quantity must be a positive integer, got 0",
        ),
        (
            b'{"orderId": "o-1", "customer": "c", "region": "r", '
            b'"lines": [{"sku": "s", "quantity": 1, "unitPriceCents": "5"}]}',
            "o-1: lines[0].unitPriceCents must be a non-negative integer, got '5'",
        ),
    ],
)
def test_a_malformed_order_names_what_is_wrong(value: bytes, message: str) -> None:
    with pytest.raises(InvalidOrder, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_order(value)
