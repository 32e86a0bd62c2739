"""Parsing `DestinationConfig.OnFailure.Destination` into a destination target (pure: no I/O).

    kafka://host:port[,host:port]/topic       a topic on the named cluster
    kafka://topic                             AWS's form: a topic on the mapping's own cluster
    redis://[:password@]host:port/db?stream=NAME   a Redis stream (rediss:// for TLS)
    file:///abs/path/failures.jsonl           JSON lines appended to a local file
        [?mode=0640]                          permissions of a file esm creates (default 0600)
        [&follow_symlinks=true]               write through a symbolic link at the path (refused
                                              by default: records hold event payloads)

AWS's SQS, SNS and S3 ARNs name services esm does not talk to; they are refused with a message
listing what esm supports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from esm.destinations.errors import DestinationConfigError

SUPPORTED = (
    "esm supports kafka://host:port[,host:port]/topic, kafka://topic (the mapping's own Kafka cluster), "
    "redis://host:port/db?stream=NAME and file:///absolute/path.jsonl"
)
# Kafka's legal topic names (AWS's pattern for kafka:// destinations adds: not starting with ".").
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
_SERVER = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]+)")


# Failure records carry event payloads: only their owner reads them unless told otherwise.
DEFAULT_FILE_MODE = 0o600
_FILE_OPTIONS = ("mode", "follow_symlinks")


@dataclass(frozen=True)
class FileTarget:
    path: str
    # Permissions of a file the destination creates (an existing file keeps its own).
    mode: int = DEFAULT_FILE_MODE
    # Whether a symbolic link at `path` is written through (by default it is refused).
    follow_symlinks: bool = False


@dataclass(frozen=True)
class RedisStreamTarget:
    # The URL handed to the Redis client: the original one without esm's own `stream` parameter.
    client_url: str
    stream: str
    # For messages and logs: the URL without its password.
    display_url: str


@dataclass(frozen=True)
class KafkaTopicTarget:
    bootstrap_servers: tuple[str, ...]
    topic: str


DestinationTarget = FileTarget | RedisStreamTarget | KafkaTopicTarget


def parse_destination_uri(uri: str, source_bootstrap: Sequence[str] | None = None) -> DestinationTarget:
    """Where failure records go; raise DestinationConfigError saying what is wrong with `uri`.

    `source_bootstrap` is the mapping's own Kafka cluster (None when the source is not Kafka):
    `kafka://topic` writes there.
    """
    text = uri.strip()
    if not text:
        raise DestinationConfigError(f"Destination: the URI is empty ({SUPPORTED})")
    if text.lower().startswith("arn:"):
        raise DestinationConfigError(
            f"Destination: {_aws_service(text)} ARN {uri!r} is not supported; {SUPPORTED}"
        )
    match = _SCHEME.match(text)
    scheme = match["scheme"].lower() if match else ""
    if scheme == "kafka":
        return _parse_kafka(text, source_bootstrap)
    if scheme in ("redis", "rediss"):
        return _parse_redis(text)
    if scheme == "file":
        return _parse_file(text)
    if not scheme:
        raise DestinationConfigError(f"Destination: URI {uri!r} has no scheme; {SUPPORTED}")
    raise DestinationConfigError(f"Destination: unsupported URI scheme {scheme!r} in {uri!r}; {SUPPORTED}")


def _aws_service(arn: str) -> str:
    names = {"sqs": "an SQS queue", "sns": "an SNS topic", "s3": "an S3 bucket", "kafka": "an MSK cluster"}
    parts = arn.split(":")
    service = parts[2].lower() if len(parts) > 2 else ""
    return names.get(service, f"an AWS {service!r}" if service else "an AWS")


def _parse_kafka(uri: str, source_bootstrap: Sequence[str] | None) -> KafkaTopicTarget:
    if not uri.lower().startswith("kafka://"):
        raise DestinationConfigError(f"Destination: Kafka URI {uri!r} must start with kafka://")
    # Split by hand: urlsplit cannot read several host:port pairs as one netloc.
    rest = uri[len("kafka://") :]
    if "?" in rest or "#" in rest:
        raise DestinationConfigError(f"Destination: Kafka URI {uri!r} takes no query or fragment")
    servers_text, slash, topic = rest.partition("/")
    if not slash:
        # kafka://topic: the mapping's own cluster.
        topic = servers_text
        if ":" in topic or "," in topic:
            raise DestinationConfigError(
                f"Destination: Kafka URI {uri!r} names brokers but no topic (kafka://host:port/topic)"
            )
        _check_topic(uri, topic)
        if not source_bootstrap:
            raise DestinationConfigError(
                f"Destination: {uri!r} writes to the mapping's own Kafka cluster, but this mapping's "
                "source is not Kafka; name the brokers: kafka://host:port/topic"
            )
        return KafkaTopicTarget(bootstrap_servers=tuple(source_bootstrap), topic=topic)
    if not servers_text:
        raise DestinationConfigError(
            f"Destination: Kafka URI {uri!r} has no brokers before the topic (kafka://host:port/topic)"
        )
    servers = tuple(_check_server(uri, s) for s in servers_text.split(","))
    if "/" in topic:
        raise DestinationConfigError(
            f"Destination: Kafka URI {uri!r} has more than one path segment; the path is the topic name"
        )
    _check_topic(uri, topic)
    return KafkaTopicTarget(bootstrap_servers=servers, topic=topic)


def _check_server(uri: str, server: str) -> str:
    match = _SERVER.fullmatch(server)
    if match is None:
        raise DestinationConfigError(
            f"Destination: Kafka URI {uri!r} has broker {server!r}; each broker must be host:port"
        )
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise DestinationConfigError(
            f"Destination: Kafka URI {uri!r} has broker {server!r} with port {port} (1-65535)"
        )
    return server


def _check_topic(uri: str, topic: str) -> None:
    if not topic:
        raise DestinationConfigError(f"Destination: Kafka URI {uri!r} has no topic (kafka://host:port/topic)")
    if _TOPIC.fullmatch(topic) is None or topic.startswith("."):
        raise DestinationConfigError(
            f"Destination: Kafka URI {uri!r} has topic {topic!r}; a topic name is 1-249 of "
            "A-Z a-z 0-9 . _ - and does not start with '.'"
        )


def _parse_redis(uri: str) -> RedisStreamTarget:
    parts = _split(uri)
    display_url = _without_password(uri)
    try:
        parts.port  # noqa: B018 - the property validates
    except ValueError as exc:
        raise DestinationConfigError(
            f"Destination: Redis URI {display_url!r} has a bad port (1-65535)"
        ) from exc
    if not parts.hostname:
        raise DestinationConfigError(
            f"Destination: Redis URI {display_url!r} has no host (redis://host:port/db?stream=NAME)"
        )
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise DestinationConfigError(
            f"Destination: Redis URI {display_url!r} has database {db!r}; it must be a number "
            "(redis://host:port/0?stream=NAME)"
        )
    params = parse_qsl(parts.query, keep_blank_values=True)
    streams = [value for key, value in params if key == "stream"]
    if not streams:
        raise DestinationConfigError(
            f"Destination: Redis URI {display_url!r} has no `stream` parameter naming the Redis stream "
            "(redis://host:port/db?stream=NAME)"
        )
    if len(streams) > 1:
        raise DestinationConfigError(f"Destination: Redis URI {display_url!r} gives `stream` more than once")
    if not streams[0]:
        raise DestinationConfigError(f"Destination: Redis URI {display_url!r} has an empty `stream`")
    client_query = urlencode([(key, value) for key, value in params if key != "stream"])
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, client_query, ""))
    return RedisStreamTarget(client_url=client_url, stream=streams[0], display_url=display_url)


def _split(uri: str) -> SplitResult:
    try:
        return urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed [IPv6] bracket
        raise DestinationConfigError(f"Destination: URI {uri!r} is malformed: {exc}") from exc


def _without_password(uri: str) -> str:
    parts = _split(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _parse_file(uri: str) -> FileTarget:
    parts = _split(uri)
    if parts.netloc and parts.netloc != "localhost":
        raise DestinationConfigError(
            f"Destination: file URI {uri!r} names host {parts.netloc!r}; use an absolute local path "
            "with three slashes: file:///abs/path/failures.jsonl"
        )
    if parts.fragment:
        raise DestinationConfigError(f"Destination: file URI {uri!r} takes no fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise DestinationConfigError(
            f"Destination: file URI {uri!r} needs an absolute path: file:///abs/path/failures.jsonl"
        )
    if path.endswith("/"):
        raise DestinationConfigError(f"Destination: file URI {uri!r} names a directory, not a file")
    options = _file_options(uri, parts.query)
    return FileTarget(
        path=path,
        mode=_file_mode(uri, options.get("mode")),
        follow_symlinks=_yes_or_no(uri, "follow_symlinks", options.get("follow_symlinks")),
    )


def _file_options(uri: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise DestinationConfigError(f"Destination: file URI {uri!r} has a malformed query: {exc}") from exc
    for key, value in pairs:
        if key not in _FILE_OPTIONS:
            raise DestinationConfigError(
                f"Destination: file URI {uri!r} has unknown option {key!r}; the options are "
                "mode=0640 and follow_symlinks=true"
            )
        if key in options:
            raise DestinationConfigError(f"Destination: file URI {uri!r} gives {key!r} more than once")
        options[key] = value
    return options


def _file_mode(uri: str, text: str | None) -> int:
    if text is None:
        return DEFAULT_FILE_MODE
    if re.fullmatch(r"0?[0-7]{3}", text) is None:
        raise DestinationConfigError(
            f"Destination: file URI {uri!r} has mode {text!r}; expected octal permissions such as 0600"
        )
    mode = int(text, 8)
    if mode & 0o600 != 0o600:
        raise DestinationConfigError(
            f"Destination: file URI {uri!r} has mode {text}; the owner (esm) must be able to read "
            "and write the file (0600 at least)"
        )
    return mode


def _yes_or_no(uri: str, key: str, text: str | None) -> bool:
    if text is None:
        return False
    if text not in ("true", "false"):
        raise DestinationConfigError(
            f"Destination: file URI {uri!r} has {key}={text!r}; expected true or false"
        )
    return text == "true"
