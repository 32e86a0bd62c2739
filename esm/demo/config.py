"""The config `esm demo` runs the daemon with, in the engine's own format (AWS parameter names).

Written to the demo's directory as YAML so it can be read, copied and run with `esm run -c`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FUNCTION_NAME = "orders"
# The bundled broker holds a group's first join for half the session timeout: keep it short. It
# also does not wake a waiting fetch when data arrives, so the fetch wait bounds the latency.
FAST_CONSUMER_CONFIG = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "fetch.max.wait.ms": 20}
SHUTDOWN_GRACE_S = 10


@dataclass(frozen=True)
class DemoSetup:
    bootstrap: str
    topic: str
    consumer_group: str
    worker_endpoint: str
    concurrency: int
    store_path: Path
    metrics_port: int


def demo_config(setup: DemoSetup) -> dict[str, Any]:
    return {
        "Store": f"sqlite:///{setup.store_path.resolve()}",
        "Metrics": {"Port": setup.metrics_port, "Host": "127.0.0.1"},
        "ShutdownGracePeriodSeconds": SHUTDOWN_GRACE_S,
        "Functions": [
            {
                "FunctionName": FUNCTION_NAME,
                "Endpoints": [setup.worker_endpoint],
                "ReservedConcurrentExecutions": setup.concurrency,
                "Timeout": 30,
            }
        ],
        "EventSourceMappings": [
            {
                "FunctionName": FUNCTION_NAME,
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [setup.bootstrap]}},
                "Topics": [setup.topic],
                "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": setup.consumer_group},
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 100,
                "MaximumBatchingWindowInSeconds": 0,
                "KafkaConsumerConfig": dict(FAST_CONSUMER_CONFIG),
            }
        ],
    }


def write_demo_config(path: Path, setup: DemoSetup) -> Path:
    path.write_text(yaml.safe_dump(demo_config(setup), sort_keys=False))
    return path
