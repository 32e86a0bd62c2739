"""traceparent <-> X-Ray, as the OpenTelemetry AWS X-Ray propagator maps them."""

from __future__ import annotations

import pytest

from esm.tracing.headers import TraceParent, parse_traceparent, trace_parent

TRACE = "5759e988bd862e3fe1be46a994272793"
SPAN = "53995c3f42cd8ad8"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", TraceParent(TRACE, SPAN, True)),
        (f"00-{TRACE}-{SPAN}-00", TraceParent(TRACE, SPAN, False)),
        (f" 00-{TRACE}-{SPAN}-03 ", TraceParent(TRACE, SPAN, True)),  # other flags kept out
        (f"00-{'0' * 32}-{SPAN}-01", None),  # all-zero ids are invalid
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{SPAN}-01", None),  # the W3C form is lowercase
        (f"01-{TRACE}-{SPAN}-01", None),  # only version 00
        (f"00-{TRACE}-{SPAN}", None),
        ("", None),
    ],
)
def test_parse_traceparent(header: str, expected: TraceParent | None) -> None:
    assert parse_traceparent(header) == expected


def test_xray_header_splits_the_trace_id_as_the_propagator_does() -> None:
    parent = TraceParent(TRACE, SPAN, True)
    assert parent.xray() == "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert TraceParent(TRACE, SPAN, False).xray().endswith(";Sampled=0")


def test_round_trip_from_opentelemetry_ids() -> None:
    parent = trace_parent(int(TRACE, 16), int(SPAN, 16), True)
    assert parent.header() == f"00-{TRACE}-{SPAN}-01"
    assert parse_traceparent(parent.header()) == parent
