"""One event source mapping, with AWS CreateEventSourceMapping names, so AWS JSON can be pasted."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from esm.config import mapping_parts as parts
from esm.config.arns import parse_event_source_arn, resolve_function_name
from esm.config.aws_fields import AWS_ONLY_SETTINGS, strip_response_fields
from esm.config.base import ConfigModel
from esm.config.constraints import (
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    between,
    minus_one_or_between,
    one_of,
    validated_by,
)
from esm.config.identity import check_uuid, derive_mapping_uuid
from esm.config.kafka_properties import consumer_kwargs
from esm.config.librdkafka_properties import UnsupportedClientSetting, librdkafka_config
from esm.config.mapping_checks import mapping_shape_problems
from esm.config.problems import Location, problem, raise_combined
from esm.config.sources import (
    DynamoDBStreamsSource,
    EventSource,
    KafkaSource,
    KinesisSource,
    kafka_source_identity,
)
from esm.config.unsupported import source_message
from esm.destinations.errors import DestinationError
from esm.destinations.uri import parse_destination_uri
from esm.filtering import FilterPatternError, RecordFilter, compile_filters

# Lambda's default batching windows when MaximumBatchingWindowInSeconds is absent.
KAFKA_DEFAULT_BATCHING_WINDOW_SECONDS = 0.5
STREAMS_DEFAULT_BATCHING_WINDOW_SECONDS = 0.0
# How soon a caught-up stream shard is read again (esm extension PollingIntervalInSeconds).
DEFAULT_POLLING_INTERVAL_SECONDS = 0.2
# How far that grows while a shard's reads keep coming back empty (IdlePollingIntervalInSeconds).
DEFAULT_IDLE_POLLING_INTERVAL_SECONDS = 1.0


def _check_event_source_arn(value: str) -> str:
    try:
        source = parse_event_source_arn(value)
    except ValueError as error:
        raise problem("arn", str(error)) from None
    reason = source_message(source)
    if reason is not None:
        raise problem("not_supported_yet", reason)
    return value


def _check_kafka_properties(properties: dict[str, Any]) -> dict[str, Any]:
    _, problems = consumer_kwargs(properties)
    if problems:
        details = [
            InitErrorDetails(
                type=problem("kafka_property", found.message), loc=(found.property,), input=properties
            )
            for found in problems
        ]
        raise ValidationError.from_exception_data("KafkaConsumerConfig", details)
    return properties


FunctionReference = Annotated[StrictStr, validated_by(resolve_function_name, "function")]
MappingUuid = Annotated[StrictStr, validated_by(check_uuid, "uuid")]
KafkaConsumerProperties = Annotated[dict[StrictStr, Any], AfterValidator(_check_kafka_properties)]


class EventSourceMappingConfig(ConfigModel):
    """A mapping: which source feeds which function, and how records are batched."""

    FunctionName: FunctionReference | None = None
    """A function name or Lambda function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`),
    resolved to NAME, which must be defined in Functions. Required unless FunctionArn is given."""
    FunctionArn: FunctionReference | None = None
    """AWS's response field; names the function when FunctionName is absent. Default: none."""
    UUID: MappingUuid | None = None
    """The mapping's id. Default: a UUID derived from the function name and the source, stable across
    restarts (so the consumer group and checkpoints are found again)."""

    SelfManagedEventSource: parts.SelfManagedEventSource | None = None
    """A self-managed Kafka cluster: `{Endpoints: {KAFKA_BOOTSTRAP_SERVERS: [host:port, ...]}}`.
    Exactly one of SelfManagedEventSource and EventSourceArn is required."""
    EventSourceArn: Annotated[StrictStr, AfterValidator(_check_event_source_arn)] | None = None
    """A Kinesis stream (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`) or DynamoDB stream
    (`arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL`; esm extension: the table ARN
    `...:table/TABLE` follows the table's current stream). MSK cluster ARNs are not supported yet."""
    Topics: parts.Topics | None = None
    """Kafka: the topic, exactly one. Required with SelfManagedEventSource."""
    SelfManagedKafkaEventSourceConfig: parts.SelfManagedKafkaEventSourceConfig | None = None
    """Kafka: `{ConsumerGroupId: ...}`. Default: the consumer group is the mapping UUID."""
    KafkaConsumerConfig: KafkaConsumerProperties | None = None
    """esm extension: Kafka consumer properties by their Java names (`session.timeout.ms`, `sasl.mechanism`,
    `ssl.truststore.location` with `ssl.truststore.type: PEM`, ...). Default: kafka-python's defaults."""

    KafkaClient: Annotated[parts.KafkaClient, one_of(parts.KafkaClient)] = parts.KafkaClient.KAFKA_PYTHON
    """esm extension: the Kafka client library, `kafka-python` (pure Python) or `confluent-kafka`
    (librdkafka: several times the throughput; `pip install 'esm[confluent]'`). Default: kafka-python."""

    StartingPosition: Annotated[parts.StartingPosition, one_of(parts.StartingPosition)]
    """TRIM_HORIZON, LATEST or AT_TIMESTAMP (Kafka: only used when the group has no offsets). Required."""
    StartingPositionTimestamp: parts.Timestamp | None = None
    """Epoch seconds or ISO-8601 (no zone means UTC). Required with AT_TIMESTAMP, an error otherwise."""
    BatchSize: Annotated[StrictInt, between(1, 10000)] = 100
    """Most records per invocation, 1-10000. Default: 100."""
    MaximumBatchingWindowInSeconds: Annotated[StrictFloat, between(0, 300)] | None = None
    """Longest wait to fill a batch, 0-300 s, fractions allowed. Default: 0.5 for Kafka, 0 for streams."""
    Enabled: StrictBool = True
    """Whether the mapping polls. Default: true."""
    MaximumRetryBackoffInSeconds: Annotated[StrictFloat, between(1, 900)] = 30.0
    """esm extension: the cap of the exponential backoff between retries of a failed batch (from
    1 s, doubling). Default: 30."""
    PollingIntervalInSeconds: Annotated[StrictFloat, between(0.01, 60)] | None = None
    """esm extension, Kinesis and DynamoDB Streams: how soon a caught-up shard is read again, from
    the start of one read to the start of the next, 0.01-60 s (reads never start less than 0.2 s
    apart, Kinesis' 5 reads per second per shard; a shard that is behind is read again as soon as
    that allows). Default: 0.2; Lambda polls once a second."""
    IdlePollingIntervalInSeconds: Annotated[StrictFloat, between(0.01, 60)] | None = None
    """esm extension, Kinesis and DynamoDB Streams: the longest interval of a shard whose reads keep
    coming back empty, 0.01-60 s, at least PollingIntervalInSeconds (equal to it: no idle back-off).
    The interval grows by a tenth of the time the reads have been empty, so a record that comes
    to a quiet shard waits at most a tenth of the quiet time and at most this; the first read
    that returns records brings PollingIntervalInSeconds back. Default: 1.0 (never below
    PollingIntervalInSeconds)."""

    MaximumRetryAttempts: Annotated[StrictInt, minus_one_or_between(0, 10000)] = -1
    """Retries after a function error, -1 (until the record expires) or 0-10000. Default: -1."""
    MaximumRecordAgeInSeconds: Annotated[StrictInt, minus_one_or_between(60, 604800)] = -1
    """Oldest record sent to the function, -1 (no limit) or 60-604800 seconds. Default: -1."""
    BisectBatchOnFunctionError: StrictBool = False
    """Split a failed batch in two and retry each half. Default: false."""
    FunctionResponseTypes: tuple[
        Annotated[parts.FunctionResponseType, one_of(parts.FunctionResponseType)], ...
    ] = ()
    """`[ReportBatchItemFailures]` enables partial batch responses. Default: []."""
    DestinationConfig: parts.DestinationConfig = parts.DestinationConfig()
    """`{OnFailure: {Destination: ...}}` for batches that finally fail. Default: none."""
    FilterCriteria: parts.FilterCriteria = parts.FilterCriteria()
    """`{Filters: [{Pattern: ...}]}`; records matching no pattern are dropped. Default: no filtering."""
    ParallelizationFactor: Annotated[StrictInt, between(1, 10)] = 1
    """Concurrent batches per shard or partition, 1-10; records are spread by partition key
    (DynamoDB: item key; Kafka, an esm extension: record key), so order is kept per key. Kafka
    records with a null key are spread by offset. Default: 1."""
    TumblingWindowInSeconds: Annotated[StrictInt, between(0, 900)] = 0
    """Kinesis and DynamoDB Streams: tumbling window for stateful aggregation, 0-900 seconds
    (0 = off). The state is kept per shard (per lane with ParallelizationFactor). Default: 0."""

    # AWS-only settings: accepted and ignored, each reported as a warning (see aws_fields.py).
    ProvisionedPollerConfig: Any = None
    """AWS-only, ignored with a warning."""
    ScalingConfig: Any = None
    """AWS-only, ignored with a warning."""
    KMSKeyArn: Any = None
    """AWS-only, ignored with a warning."""
    SourceAccessConfigurations: Any = None
    """AWS-only, ignored with a warning (Kafka credentials go in KafkaConsumerConfig)."""
    Tags: Any = None
    """AWS-only, ignored with a warning."""
    AmazonManagedKafkaEventSourceConfig: Any = None
    """AWS-only when empty, ignored with a warning."""
    DocumentDBEventSourceConfig: Any = None
    """AWS-only, ignored with a warning."""
    Queues: Any = None
    """AWS-only, ignored with a warning."""

    @model_validator(mode="wrap")
    @classmethod
    def _check_whole_entry(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, Mapping):
            return handler(data)
        entry = strip_response_fields(data)
        shape_problems = mapping_shape_problems(entry)
        try:
            mapping = handler(entry)
        except ValidationError as error:
            raise_combined(error, shape_problems)
        problems = shape_problems or (
            _kafka_client_problems(mapping)
            + _failure_handling_problems(mapping)
            + _stream_only_problems(mapping)
            + _polling_problems(mapping)
        )
        if problems:
            raise_combined(None, problems)
        return mapping

    # --- snake_case accessors for engine code ---

    @property
    def function_name(self) -> str:
        reference = self.FunctionName or self.FunctionArn
        assert reference is not None  # guaranteed by mapping_shape_problems
        return resolve_function_name(reference)

    @property
    def uuid(self) -> str:
        return self.UUID or derive_mapping_uuid(self.function_name, self._source_identity())

    @property
    def source(self) -> EventSource:
        if self.SelfManagedEventSource is not None:
            group = self.SelfManagedKafkaEventSourceConfig
            return KafkaSource(
                bootstrap_servers=self.SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS,
                topic=self._topic(),
                consumer_group_id=(group.ConsumerGroupId if group else None) or self.uuid,
            )
        assert self.EventSourceArn is not None  # exactly one source, checked at validation
        return parse_event_source_arn(self.EventSourceArn)

    @property
    def starting_position(self) -> parts.StartingPosition:
        return self.StartingPosition

    @property
    def starting_position_timestamp(self) -> datetime | None:
        return self.StartingPositionTimestamp

    @property
    def batch_size(self) -> int:
        return self.BatchSize

    @property
    def batching_window_seconds(self) -> float:
        if self.MaximumBatchingWindowInSeconds is not None:
            return self.MaximumBatchingWindowInSeconds
        if isinstance(self.source, KafkaSource):
            return KAFKA_DEFAULT_BATCHING_WINDOW_SECONDS
        return STREAMS_DEFAULT_BATCHING_WINDOW_SECONDS

    @property
    def enabled(self) -> bool:
        return self.Enabled

    @property
    def polling_interval_seconds(self) -> float:
        return (
            DEFAULT_POLLING_INTERVAL_SECONDS
            if self.PollingIntervalInSeconds is None
            else self.PollingIntervalInSeconds
        )

    @property
    def idle_polling_interval_seconds(self) -> float:
        if self.IdlePollingIntervalInSeconds is None:
            return max(DEFAULT_IDLE_POLLING_INTERVAL_SECONDS, self.polling_interval_seconds)
        return self.IdlePollingIntervalInSeconds

    def kafka_consumer_kwargs(self) -> dict[str, object]:
        """KafkaConsumerConfig as kafka-python `KafkaConsumer` keyword arguments (esm adds those it owns)."""
        kwargs, problems = consumer_kwargs(self.KafkaConsumerConfig or {})
        if problems:  # unreachable: the same conversion ran at validation
            raise ValueError("; ".join(f"{found.property}: {found.message}" for found in problems))
        return kwargs

    @property
    def on_failure_destination(self) -> str | None:
        on_failure = self.DestinationConfig.OnFailure
        return None if on_failure is None else on_failure.Destination

    @property
    def include_payload_in_failures(self) -> bool:
        on_failure = self.DestinationConfig.OnFailure
        return True if on_failure is None else on_failure.IncludePayload

    @property
    def report_batch_item_failures(self) -> bool:
        return parts.FunctionResponseType.REPORT_BATCH_ITEM_FAILURES in self.FunctionResponseTypes

    @property
    def kafka_bootstrap_servers(self) -> tuple[str, ...] | None:
        source = self.source
        return source.bootstrap_servers if isinstance(source, KafkaSource) else None

    def record_filter(self) -> RecordFilter:
        """FilterCriteria compiled (FilterPatternError for an invalid pattern)."""
        json_fields: tuple[str, ...] = ()
        if isinstance(self.source, KinesisSource):
            json_fields = ("data",)
        elif isinstance(self.source, DynamoDBStreamsSource):
            json_fields = ("dynamodb",)
        return compile_filters([f.Pattern for f in self.FilterCriteria.Filters], json_fields=json_fields)

    def librdkafka_config(self) -> dict[str, object]:
        """KafkaConsumerConfig as librdkafka properties, for `KafkaClient: confluent-kafka`."""
        return librdkafka_config(self.kafka_consumer_kwargs())

    def aws_only_settings(self) -> list[str]:
        """The AWS-only settings present in this entry (each deserves a warning)."""
        return [field for field in AWS_ONLY_SETTINGS if getattr(self, field) is not None]

    def _topic(self) -> str:
        assert self.Topics is not None  # required with SelfManagedEventSource
        return self.Topics[0]

    def _source_identity(self) -> str:
        if self.SelfManagedEventSource is not None:
            servers = self.SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS
            return kafka_source_identity(servers, self._topic())
        assert self.EventSourceArn is not None
        return self.EventSourceArn


def _kafka_client_problems(mapping: EventSourceMappingConfig) -> list[tuple[Location, str]]:
    if mapping.KafkaClient is not parts.KafkaClient.CONFLUENT_KAFKA:
        return []
    if importlib.util.find_spec("confluent_kafka") is None:
        return [(("KafkaClient",), "confluent-kafka is not installed (pip install 'esm[confluent]')")]
    try:
        mapping.librdkafka_config()
    except UnsupportedClientSetting as err:
        return [(("KafkaConsumerConfig",), str(err))]
    return []


def _stream_only_problems(mapping: EventSourceMappingConfig) -> list[tuple[Location, str]]:
    """Settings that exist for Kinesis and DynamoDB Streams only (AWS has none of them for Kafka)."""
    if not isinstance(mapping.source, KafkaSource):
        return []
    set_fields = [
        field
        for field, unset in (
            ("TumblingWindowInSeconds", 0),
            ("PollingIntervalInSeconds", None),
            ("IdlePollingIntervalInSeconds", None),
        )
        if getattr(mapping, field) != unset
    ]
    return [((field,), "applies to Kinesis and DynamoDB Streams sources only") for field in set_fields]


def _polling_problems(mapping: EventSourceMappingConfig) -> list[tuple[Location, str]]:
    idle = mapping.IdlePollingIntervalInSeconds
    if idle is None or isinstance(mapping.source, KafkaSource) or idle >= mapping.polling_interval_seconds:
        return []
    interval = mapping.polling_interval_seconds
    return [
        (
            ("IdlePollingIntervalInSeconds",),
            f"must be at least PollingIntervalInSeconds ({interval:g}), got {idle:g}"
            " (equal to it turns the idle back-off off)",
        )
    ]


def _failure_handling_problems(mapping: EventSourceMappingConfig) -> list[tuple[Location, str]]:
    problems: list[tuple[Location, str]] = []
    uri = mapping.on_failure_destination
    if uri is not None:
        try:
            parse_destination_uri(uri, mapping.kafka_bootstrap_servers)
        except DestinationError as err:
            problems.append((("DestinationConfig", "OnFailure", "Destination"), str(err)))
    try:
        mapping.record_filter()
    except FilterPatternError as err:
        problems.append((("FilterCriteria",), str(err)))
    return problems
