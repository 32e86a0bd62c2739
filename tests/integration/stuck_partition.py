"""A Kafka mapping with one partition stuck retrying a poison record while the other flows: what
`esm status` and the status page are tested against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from esm_processes import EsmProcess

from esm.embedded.topics import OutgoingRecord, committed_offsets, produce

from .harness import Worker, mapping, wait_until, write_config

# 60 records over 2 partitions; the poison one is partition 1's offset 10.
RECORDS = 60
POISON_INDEX = 21


@dataclass
class StuckPartition:
    worker: Worker
    config: Path
    group: str

    def wait_partition_0_done(self, bootstrap: str, topic: str, engine: EsmProcess) -> None:
        wait_until(
            lambda: committed_offsets(bootstrap, self.group, topic).get(0) == RECORDS // 2,
            message=lambda: f"partition 0 done\n{engine.stderr[-3000:]}",
        )


def stuck_partition(bootstrap: str, topic: str, tmp_path: Path) -> StuckPartition:
    """Produces the records to `topic` (2 partitions), starts a worker failing on the poison value
    and writes the daemon's config (batches of 5, retried every second)."""
    values = [b"poison" if i == POISON_INDEX else f"r{i}".encode() for i in range(RECORDS)]
    produce(bootstrap, topic, [OutgoingRecord(value=v, partition=i % 2) for i, v in enumerate(values)])
    worker = Worker(
        "tests.handlers.recorder:handler",
        env={"ESM_RECORDER_FILE": str(tmp_path / "e.jsonl"), "ESM_RECORDER_FAIL_VALUE": "poison"},
    ).wait_serving()
    group = f"g-{topic}"
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address]}],
        [mapping(bootstrap, topic, group, BatchSize=5, MaximumRetryBackoffInSeconds=1)],
    )
    return StuckPartition(worker, config, group)
