"""The Kafka client libraries' own log lines, demoted below WARNING.

kafka-python (loggers `kafka.*`) and librdkafka (through `esm.librdkafka`) log every failed
connection attempt, several times a second while a broker is down; esm says what matters in
lines of its own (esm.sources.outage_notices). Their lines are demoted to DEBUG, not dropped:
ESM_LOG_LEVEL=DEBUG shows them all.
"""

from __future__ import annotations

import logging
import sys

CLIENT_LOGGERS = ("kafka", "esm.librdkafka")


def _from_client(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in CLIENT_LOGGERS)


class DemoteClientLines(logging.Filter):
    """A handler filter: a client library's record becomes DEBUG, and passes only if the handler's
    threshold (`level`) lets DEBUG through."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if not _from_client(record.name) or record.levelno <= logging.DEBUG:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self._level <= logging.DEBUG


def demote_client_lines(level: int) -> None:
    """Installs the filter on the root logger's handlers (call after logging is configured) and
    lets the client loggers produce records only where they would be shown."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(DemoteClientLines(level))
    for name in CLIENT_LOGGERS:
        # Records a filter would drop are not made at all (kafka-python logs a lot at INFO).
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


def command_logging() -> None:
    """For a command a person runs and reads (`esm status`, `esm replay`): esm's own warnings on
    stderr, the client libraries' lines not at all (the command says what it could not reach)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="esm: %(name)s: %(message)s")
    demote_client_lines(logging.WARNING)
