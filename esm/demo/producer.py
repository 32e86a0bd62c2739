"""The demo's producer: JSON orders at a fixed rate, on a thread, paced by the clock.

Record i is due at start + i / rate (a schedule, so one slow send does not shift the rest);
every tick sends whatever is due. Only acknowledged records count as produced.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer

from esm.demo.orders import customer_key, encode_order, make_order

TICK_S = 0.01
# Small producer batches: records reach the broker within a few ms, as a live source would.
LINGER_MS = 2
CLOSE_TIMEOUT_S = 15.0


class ProducerError(RuntimeError):
    """The producer could not connect or send; the demo reports it and shuts down."""


def records_due(elapsed_s: float, rate_per_s: int, total: int) -> int:
    """How many records should have been sent `elapsed_s` after the start (at most `total`)."""
    if elapsed_s < 0:
        return 0
    return min(total, int(elapsed_s * rate_per_s) + 1)


class PacedProducer:
    """Produces `rate_per_s` orders per second for `seconds` to `topic`, on its own thread."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        rate_per_s: int,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 7,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._rate = rate_per_s
        self.planned = int(rate_per_s * seconds)
        self._clock = clock
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._acknowledged = 0
        self._failed = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="esm-demo-producer", daemon=True)

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acknowledged

    @property
    def failed(self) -> int:
        with self._lock:
            return self._failed

    @property
    def sent(self) -> int:
        return self._sent

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sending; records already sent are still flushed."""
        self._stop.set()

    def is_done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap, linger_ms=LINGER_MS, acks=1, client_id="esm-demo-producer"
            )
        except Exception as exc:  # reported by the demo; the thread must not die silently
            self.error = exc
            return
        try:
            self._produce(producer)
            producer.flush(timeout=CLOSE_TIMEOUT_S)
        except Exception as exc:
            self.error = exc
        finally:
            producer.close(timeout=CLOSE_TIMEOUT_S)

    def _produce(self, producer: Any) -> None:
        start = self._clock()
        while self._sent < self.planned and not self._stop.is_set():
            due = records_due(self._clock() - start, self._rate, self.planned)
            while self._sent < due:
                order = make_order(self._sent, self._rng)
                future = producer.send(self._topic, key=customer_key(self._sent), value=encode_order(order))
                future.add_callback(self._on_ack)
                future.add_errback(self._on_error)
                self._sent += 1
            # Waiting for the schedule (the stop event ends the wait early on Ctrl-C).
            self._stop.wait(TICK_S)

    def _on_ack(self, _metadata: Any) -> None:
        with self._lock:
            self._acknowledged += 1

    def _on_error(self, _error: Any) -> None:
        with self._lock:
            self._failed += 1
