"""A plain kafka-python consumer-group member: the idle-CPU baseline for the scale benchmark.

    python plain_member.py BOOTSTRAP TOPIC GROUP READY_FILE

Subscribes with the same consumer settings the engine gets, polls in the usual loop, and writes
READY_FILE once it owns partitions and has read what is there; stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from kafka import KafkaConsumer

from kafka_bench.engine import KAFKA_CONSUMER_CONFIG_IDLE


def main() -> int:
    bootstrap, topic, group, ready_file = sys.argv[1:5]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    kwargs = {key.replace(".", "_"): value for key, value in KAFKA_CONSUMER_CONFIG_IDLE.items()}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        **kwargs,
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        while not stopping:
            batch = consumer.poll(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
            if consumer.assignment() and not batch and seen and not Path(ready_file).exists():
                Path(ready_file).write_text(str(seen))
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
