"""From a destination URI to the writer (`open_destination`) or the replay reader (`read_records`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from esm.destinations.destination import Destination
from esm.destinations.encoding import StoredEntry
from esm.destinations.file import FileDestination, read_file_records
from esm.destinations.kafka_topic import KafkaTopicDestination, read_topic_records
from esm.destinations.redis_stream import RedisStreamDestination, open_redis_client, read_stream_records
from esm.destinations.uri import FileTarget, KafkaTopicTarget, RedisStreamTarget, parse_destination_uri


def open_destination(uri: str, source_bootstrap: Sequence[str] | None = None) -> Destination:
    """The writer for `uri`; no connection is made until the first record.

    `source_bootstrap` is the mapping's own Kafka cluster (for `kafka://topic`), None otherwise.
    Raises DestinationConfigError for a URI esm cannot use.
    """
    target = parse_destination_uri(uri, source_bootstrap)
    if isinstance(target, FileTarget):
        return FileDestination(target.path, target.mode, target.follow_symlinks)
    if isinstance(target, RedisStreamTarget):
        return RedisStreamDestination(open_redis_client(target.client_url), target.stream, target.display_url)
    return KafkaTopicDestination(target.bootstrap_servers, target.topic)


async def read_records(uri: str, source_bootstrap: Sequence[str] | None = None) -> AsyncIterator[StoredEntry]:
    """Every record written to `uri` so far, oldest first (per partition for a Kafka topic); an
    entry that is not a record comes as an `UnreadableEntry`. Raises DestinationError when the
    destination cannot be read or does not exist."""
    target = parse_destination_uri(uri, source_bootstrap)
    if isinstance(target, FileTarget):
        async for record in read_file_records(target.path):
            yield record
    elif isinstance(target, RedisStreamTarget):
        client = open_redis_client(target.client_url)
        try:
            async for record in read_stream_records(client, target.stream, target.display_url):
                yield record
        finally:
            await client.aclose()
    elif isinstance(target, KafkaTopicTarget):
        async for record in read_topic_records(target.bootstrap_servers, target.topic):
            yield record
