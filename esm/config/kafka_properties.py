"""Kafka consumer properties (Java's dotted names) -> kafka-python `KafkaConsumer` keyword arguments.

Pure: a mapping in, keyword arguments plus a list of problems out. Names are checked against
kafka-python's own `KafkaConsumer.DEFAULT_CONFIG`, so a typo is an error naming the property.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from kafka import KafkaConsumer

from esm.config.problems import describe
from esm.config.suggestions import did_you_mean

# kafka-python settings whose values are secrets.
SECRET_SETTINGS = frozenset(("sasl_plain_password", "ssl_password"))

_CLIENT_DEFAULTS: Mapping[str, Any] = KafkaConsumer.DEFAULT_CONFIG

# Settings esm decides itself; the reason says where the user's intent goes instead.
OWNED_BY_ESM: Mapping[str, str] = {
    "group.id": "it comes from SelfManagedKafkaEventSourceConfig.ConsumerGroupId (default: the UUID)",
    "bootstrap.servers": "it comes from SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS",
    "enable.auto.commit": "offsets are committed only after the function succeeded",
    "auto.offset.reset": "it comes from StartingPosition",
    "key.deserializer": "keys reach the function as base64 bytes, as in Lambda",
    "value.deserializer": "values reach the function as base64 bytes, as in Lambda",
}

# Java properties kafka-python cannot honour; the reason says what to use instead.
NOT_SUPPORTED: Mapping[str, str] = {
    "sasl.jaas.config": "is not supported (kafka-python has no JAAS); "
    "set sasl.plain.username and sasl.plain.password instead",
    "ssl.truststore.password": "is not supported: only PEM truststores are (they need no password)",
    "ssl.keystore.password": "is not supported: use a PEM keystore (ssl.key.password for an encrypted key)",
}

# kafka-python settings that take Python objects, which a config file cannot express.
_PYTHON_OBJECT_SETTINGS = frozenset(
    {
        "default_offset_commit_callback",
        "kafka_client",
        "selector",
        "socket_options",
        "partition_assignment_strategy",
        "metric_reporters",
        "ssl_context",
        "sasl_oauth_token_provider",
    }
)

# Settings whose kafka-python default is None, so their type cannot be read from the default.
_TYPES_OF_NONE_DEFAULTS: Mapping[str, type] = {"receive_buffer_bytes": int, "send_buffer_bytes": int}

_CHOICES: Mapping[str, tuple[str, ...]] = {
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"),
    "isolation_level": ("read_uncommitted", "read_committed"),
}

# Java's PEM store settings, translated below into kafka-python's file arguments.
_STORE_SETTINGS = {
    "ssl.truststore.location": ("ssl.truststore.type", "ssl_cafile"),
    "ssl.keystore.location": ("ssl.keystore.type", "ssl_certfile"),
}
_JAVA_RENAMES: Mapping[str, str] = {"ssl.key.password": "ssl_password"}


class PropertyProblem(NamedTuple):
    property: str
    message: str


def consumer_kwargs(properties: Mapping[str, object]) -> tuple[dict[str, object], list[PropertyProblem]]:
    """Convert every property; return the keyword arguments and all problems found."""
    kwargs: dict[str, object] = {}
    problems: list[PropertyProblem] = []
    given_as: dict[str, str] = {}  # kafka-python name -> the property the user wrote
    for name, value in properties.items():
        converted = _convert(name, value, properties)
        if isinstance(converted, PropertyProblem):
            problems.append(converted)
        elif converted is not None:
            key, kwarg_value = converted
            kwargs[key] = kwarg_value
            given_as[key] = name
    problems.extend(_timing_problems(kwargs, given_as))
    problems.extend(_sasl_problems(kwargs, given_as))
    session_timeout_ms = kwargs.get("session_timeout_ms")
    if isinstance(session_timeout_ms, int) and "heartbeat_interval_ms" not in kwargs:
        # The client refuses a heartbeat >= the session timeout; Kafka's guidance is a third of it.
        kwargs["heartbeat_interval_ms"] = session_timeout_ms // 3
    return kwargs, problems


def _convert(
    name: str, value: object, properties: Mapping[str, object]
) -> tuple[str, object] | PropertyProblem | None:
    """One property -> (kwarg, value), a problem, or None when it only qualifies another property."""
    if name in OWNED_BY_ESM:
        return PropertyProblem(name, f"is set by esm, not here: {OWNED_BY_ESM[name]}")
    if name in NOT_SUPPORTED:
        return PropertyProblem(name, NOT_SUPPORTED[name])
    if name in _STORE_SETTINGS:
        return _convert_pem_store(name, value, properties)
    if name in ("ssl.truststore.type", "ssl.keystore.type"):
        return (
            None
            if value == "PEM"
            else PropertyProblem(
                name, f"only PEM is supported (kafka-python cannot read JKS or PKCS12), got {describe(value)}"
            )
        )
    if name == "partition.assignment.strategy":
        return _convert_assignment_strategy(name, value)
    if name == "ssl.endpoint.identification.algorithm":
        if value not in ("https", ""):
            return PropertyProblem(name, f"must be one of 'https', '', got {describe(value)}")
        return "ssl_check_hostname", value == "https"
    key = _JAVA_RENAMES.get(name, name.replace(".", "_"))
    if key not in _CLIENT_DEFAULTS or key in _PYTHON_OBJECT_SETTINGS or "_" in name:
        return PropertyProblem(name, _unknown_message(name))
    if key == "api_version":
        return _convert_api_version(name, value)
    return _check_value(name, key, value)


def _convert_pem_store(
    name: str, value: object, properties: Mapping[str, object]
) -> tuple[str, object] | PropertyProblem | None:
    type_property, key = _STORE_SETTINGS[name]
    if type_property in properties and properties[type_property] != "PEM":
        return None  # the type property reports it
    if type_property not in properties:
        return PropertyProblem(
            name,
            f"kafka-python reads only PEM files: set {type_property}: PEM (JKS and PKCS12 are not supported)",
        )
    if not isinstance(value, str) or not value:
        return PropertyProblem(name, f"expected a file path, got {describe(value)}")
    return key, value


# partition.assignment.strategy: Kafka's short names (librdkafka's too) and Java's class names.
EAGER_ASSIGNORS = ("range", "roundrobin", "sticky")
COOPERATIVE_ASSIGNORS = ("cooperative-sticky",)
_JAVA_ASSIGNORS = {
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
}


def _convert_assignment_strategy(name: str, value: object) -> tuple[str, object] | PropertyProblem:
    """Comma-separated assignor names -> a tuple of short names (the client adapters map them)."""
    if not isinstance(value, str) or not value.strip():
        return PropertyProblem(name, f"expected assignor names separated by commas, got {describe(value)}")
    names = tuple(_JAVA_ASSIGNORS.get(part.strip(), part.strip()) for part in value.split(","))
    known = EAGER_ASSIGNORS + COOPERATIVE_ASSIGNORS
    unknown = [part for part in names if part not in known]
    if unknown:
        return PropertyProblem(name, f"unknown assignor {unknown[0]!r}: use one of {', '.join(known)}")
    if any(part in COOPERATIVE_ASSIGNORS for part in names) and any(
        part in EAGER_ASSIGNORS for part in names
    ):
        return PropertyProblem(
            name,
            f"cannot mix cooperative-sticky with eager assignors "
            f"({', '.join(EAGER_ASSIGNORS)}), got {value!r}",
        )
    return "partition_assignment_strategy", names


def _convert_api_version(name: str, value: object) -> tuple[str, object] | PropertyProblem:
    parts = value.split(".") if isinstance(value, str) else []
    if not 2 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        return PropertyProblem(name, f"expected a broker version such as '2.8.0', got {describe(value)}")
    return "api_version", tuple(int(part) for part in parts)


def _check_value(name: str, key: str, value: object) -> tuple[str, object] | PropertyProblem:
    default = _CLIENT_DEFAULTS[key]
    expected: type = _TYPES_OF_NONE_DEFAULTS.get(key, str) if default is None else type(default)
    if expected is bool:
        ok = isinstance(value, bool)
        wanted = "true or false"
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        wanted = "an integer"
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        wanted = "a finite number"
    else:
        ok = isinstance(value, str)
        wanted = "a string"
    if not ok:
        # A secret is never echoed, even a malformed one: the message may reach a log.
        shown = f"a value of type {type(value).__name__}" if key in SECRET_SETTINGS else describe(value)
        return PropertyProblem(name, f"expected {wanted}, got {shown}")
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        return PropertyProblem(name, f"must be one of {', '.join(choices)}, got {describe(value)}")
    if expected is int and isinstance(value, int) and value < 0:
        return PropertyProblem(name, f"must not be negative, got {value}")
    return key, value


def _unknown_message(name: str) -> str:
    known = sorted(
        {key.replace("_", ".") for key in _CLIENT_DEFAULTS if key not in _PYTHON_OBJECT_SETTINGS}
        | set(_STORE_SETTINGS)
        | set(_JAVA_RENAMES)
    )
    hint = did_you_mean(name, known)
    return f"unknown Kafka consumer property (not a kafka-python KafkaConsumer setting){hint}"


def _timing_problems(kwargs: Mapping[str, object], given_as: Mapping[str, str]) -> list[PropertyProblem]:
    """The orderings kafka-python enforces when the consumer is built, checked at load time instead."""
    settings: dict[str, int] = {key: _CLIENT_DEFAULTS[key] for key in _TIMING_KEYS}
    settings.update(
        {key: value for key, value in kwargs.items() if key in _TIMING_KEYS and isinstance(value, int)}
    )
    problems = []
    if (
        "heartbeat_interval_ms" in kwargs
        and settings["heartbeat_interval_ms"] >= settings["session_timeout_ms"]
    ):
        problems.append(
            PropertyProblem(
                given_as["heartbeat_interval_ms"],
                f"must be lower than session.timeout.ms ({settings['session_timeout_ms']}), "
                f"got {settings['heartbeat_interval_ms']}",
            )
        )
    order = ("fetch_max_wait_ms", "request_timeout_ms", "connections_max_idle_ms")
    if any(key in kwargs for key in order) and not (
        settings[order[0]] < settings[order[1]] < settings[order[2]]
    ):
        where = next(given_as[key] for key in order if key in kwargs)
        problems.append(
            PropertyProblem(
                where,
                "fetch.max.wait.ms < request.timeout.ms < connections.max.idle.ms must hold, got "
                + " < ".join(str(settings[key]) for key in order),
            )
        )
    return problems


_TIMING_KEYS = (
    "heartbeat_interval_ms",
    "session_timeout_ms",
    "fetch_max_wait_ms",
    "request_timeout_ms",
    "connections_max_idle_ms",
)


def _sasl_problems(kwargs: Mapping[str, object], given_as: Mapping[str, str]) -> list[PropertyProblem]:
    mechanism = kwargs.get("sasl_mechanism")
    needs_password = mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    missing = [key for key in ("sasl_plain_username", "sasl_plain_password") if key not in kwargs]
    if needs_password and missing:
        wanted = " and ".join(key.replace("_", ".") for key in missing)
        return [PropertyProblem(given_as["sasl_mechanism"], f"{mechanism} needs {wanted}")]
    return []
