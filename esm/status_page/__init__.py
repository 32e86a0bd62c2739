"""The daemon's status page: `GET /` (HTML a person reads, refreshed live) and `GET /status`
(the same as JSON), served beside /metrics. Gathered as `esm status` gathers it (esm.status),
within a time budget."""

from __future__ import annotations

from collections.abc import Callable

from esm.config import EsmConfig
from esm.status_page.gather import StatusGatherer
from esm.status_page.snapshots import StatusSnapshots

__all__ = ["StatusSnapshots", "status_snapshots"]


def status_snapshots(config: EsmConfig, healthy: Callable[[], bool]) -> StatusSnapshots:
    """The status page's source for a daemon running `config`."""
    gatherer = StatusGatherer(config)
    return StatusSnapshots(gatherer.gather, healthy, close=gatherer.close)
