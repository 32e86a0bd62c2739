"""On-failure destinations: the failure record Lambda writes, and where esm writes it.

- `record`: pure builders of the record (`kafka_failure_record`, `stream_failure_record`).
- `uri`: `DestinationConfig.OnFailure.Destination` -> a target (kafka://, redis://, file://).
- `file`, `redis_stream`, `kafka_topic`: the writers, one `Destination` interface, and their readers.
- `opener`: `open_destination(uri, source_bootstrap)` and `read_records(uri)` for replay.
"""

from esm.destinations.destination import Destination
from esm.destinations.errors import (
    DestinationConfigError,
    DestinationError,
    DestinationRejectedError,
    DestinationUnavailableError,
)
from esm.destinations.opener import open_destination, read_records
from esm.destinations.record import (
    FailureCondition,
    FailureContext,
    KafkaBatch,
    KafkaPartitionRange,
    LastFailure,
    StreamBatch,
    StreamKind,
    kafka_failure_record,
    stream_failure_record,
)
from esm.destinations.uri import parse_destination_uri

__all__ = [
    "Destination",
    "DestinationConfigError",
    "DestinationError",
    "DestinationRejectedError",
    "DestinationUnavailableError",
    "FailureCondition",
    "FailureContext",
    "KafkaBatch",
    "KafkaPartitionRange",
    "LastFailure",
    "StreamBatch",
    "StreamKind",
    "kafka_failure_record",
    "open_destination",
    "parse_destination_uri",
    "read_records",
    "stream_failure_record",
]
