"""`Tracing`: OpenTelemetry spans for every batch, exported over OTLP/HTTP (esm.tracing)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from esm.config.base import ConfigModel
from esm.config.constraints import StrictFloat, StrictStr, between, matching, validated_by
from esm.config.problems import describe


def check_collector_url(url: str) -> None:
    """ValueError unless `url` is `http(s)://HOST:PORT` with at most a path (the collector's base)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.query
        or parts.fragment
        or parts.password is not None
    ):
        raise ValueError(
            f"expected the collector's base URL, http://HOST:PORT (spans go to <Endpoint>/v1/traces), "
            f"got {describe(url)}"
        )


class TracingConfig(ConfigModel):
    Endpoint: Annotated[StrictStr, validated_by(check_collector_url, "url")]
    """The OTLP/HTTP collector's base URL, `http://HOST:PORT` (as OTEL_EXPORTER_OTLP_ENDPOINT):
    spans are posted as protobuf to `<Endpoint>/v1/traces`. Required."""
    SampleRatio: Annotated[StrictFloat, between(0, 1)] = 1.0
    """The share of batches traced, 0.0-1.0 (by trace id). Default: 1.0."""
    ServiceName: Annotated[StrictStr, matching(r"\S.*", "a non-empty name")] = "esm"
    """`service.name` of the daemon's spans. Default: esm."""
