"""The floor's consumer (run as a script, in a process of its own as the engine's reader is): a
plain kafka-python consumer assigned to every partition at its end, with the engine's fetch wait
(and the retry backoff the engine derives from it, esm.sources.kafka.retry_backoff_ms), printing
`ready` once positioned and then, when it has `count` records, each one's latency (now -
CreateTime, ms) on one line.

    python latency_consumer.py BOOTSTRAP TOPIC PARTITIONS COUNT FETCH_MAX_WAIT_MS
"""

from __future__ import annotations

import sys
import time

from kafka import KafkaConsumer, TopicPartition

from esm.sources.kafka import retry_backoff_ms


def main(bootstrap: str, topic: str, partitions: int, count: int, fetch_max_wait_ms: int) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
        retry_backoff_ms=retry_backoff_ms({"fetch_max_wait_ms": fetch_max_wait_ms}),
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for tp in assigned:
        consumer.position(tp)  # resolves the end offsets now, not when the first records come
    print("ready", flush=True)
    latencies: list[float] = []
    while len(latencies) < count:
        for records in consumer.poll(timeout_ms=250).values():
            now_ms = time.time() * 1000.0
            latencies.extend(now_ms - r.timestamp for r in records)
    consumer.close()
    print(" ".join(f"{value:.2f}" for value in latencies), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
