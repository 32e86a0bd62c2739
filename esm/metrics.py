"""Every metric esm exports, in one place. Names are prefixed `esm_`; labels are bounded (a mapping's
UUID, a function's name, an outcome from a fixed set), never per record or per partition.

With several poller processes, prometheus-client's multiprocess mode aggregates the processes'
values (gauges declare how); the supervisor serves the merged view.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """The metric families. Pass a registry (one process) or None (multiprocess: values go to files)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry
        self.records_polled = Counter(
            "esm_records_polled", "Records read from the source.", ["mapping"], registry=r
        )
        self.records_invoked = Counter(
            "esm_records_invoked",
            "Records sent to the function (each attempt counts).",
            ["mapping"],
            registry=r,
        )
        self.records_delivered = Counter(
            "esm_records_delivered",
            "Records the function processed successfully, then checkpointed (records given up on"
            " to the on-failure destination or dropped are not counted).",
            ["mapping"],
            registry=r,
        )
        self.invocations = Counter(
            "esm_invocations",
            "Invocations by outcome: success, function_error, timeout, throttled, unreachable.",
            ["function", "outcome"],
            registry=r,
        )
        self.invocation_duration = Histogram(
            "esm_invocation_duration_seconds",
            "Time from sending an invocation to its answer.",
            ["function"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "esm_batch_size_records",
            "Records per invoked batch.",
            ["mapping"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "esm_batch_retries", "Batches retried after a failed attempt.", ["mapping"], registry=r
        )
        self.bisects = Counter(
            "esm_batch_bisects",
            "Failed batches split in two (BisectBatchOnFunctionError).",
            ["mapping"],
            registry=r,
        )
        self.records_filtered = Counter(
            "esm_records_filtered",
            "Records FilterCriteria dropped (checkpointed, not invoked).",
            ["mapping"],
            registry=r,
        )
        self.destination_failures = Counter(
            "esm_destination_failures",
            "Failed writes to the on-failure destination (retried until they succeed).",
            ["mapping"],
            registry=r,
        )
        self.records_failed_invoke = Counter(
            "esm_records_failed_invoke",
            "Records in invocations that failed (error, timeout, failing partial response):"
            " FailedInvokeEventCount.",
            ["mapping"],
            registry=r,
        )
        self.records_to_destination = Counter(
            "esm_records_to_destination",
            "Records given up on and written to the on-failure destination:"
            " OnFailureDestinationDeliveredEventCount.",
            ["mapping"],
            registry=r,
        )
        self.records_dropped = Counter(
            "esm_records_dropped",
            "Records given up on with no on-failure destination configured: DroppedEventCount.",
            ["mapping"],
            registry=r,
        )
        self.offset_lag = Gauge(
            "esm_offset_lag",
            "Records in the source not yet checkpointed (Kafka OffsetLag), summed over owned partitions.",
            ["mapping"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.iterator_age = Gauge(
            "esm_iterator_age_seconds",
            "Age of the last record sent to the function (now - record timestamp).",
            ["mapping"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.partitions_owned = Gauge(
            "esm_partitions_owned",
            "Partitions or shards this daemon processes.",
            ["mapping"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.concurrent_invocations = Gauge(
            "esm_concurrent_invocations",
            "Invocations in flight (ConcurrentExecutions).",
            ["function"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.throttles = Counter(
            "esm_throttles",
            "Invocations that had to wait for room under the concurrency limit.",
            ["function"],
            registry=r,
        )
        self.commits = Counter(
            "esm_commits", "Checkpoints written (Kafka offset commits).", ["mapping"], registry=r
        )
        self.commit_failures = Counter(
            "esm_commit_failures", "Checkpoint writes that failed or were refused.", ["mapping"], registry=r
        )
        self.records_dropped_on_revoke = Counter(
            "esm_records_dropped_on_revoke",
            "Buffered or in-flight records dropped because their partition was lost"
            " (its new owner re-reads them).",
            ["mapping"],
            registry=r,
        )
        self.leases_taken = Counter(
            "esm_leases_taken",
            "Shard leases this daemon took (unowned, expired, or stolen toward an even spread).",
            ["mapping"],
            registry=r,
        )
        self.leases_lost = Counter(
            "esm_leases_lost",
            "Shard leases this daemon lost to another member (or could not renew in time).",
            ["mapping"],
            registry=r,
        )
        self.trimmed_checkpoints = Counter(
            "esm_trimmed_checkpoints",
            "Shards whose checkpoint had been trimmed by retention: reading resumed at TRIM_HORIZON"
            " and the records in between were lost.",
            ["mapping"],
            registry=r,
        )
        self.shards_unowned = Gauge(
            "esm_shards_unowned",
            "Stream shards whose lease no live member holds (free or expired; finished shards not"
            " counted), as this daemon last read the lease table.",
            ["mapping"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.shard_reads = Counter(
            "esm_shard_reads",
            "GetRecords calls on stream shards, by result: records, empty (caught up) or throttled.",
            ["mapping", "result"],
            registry=r,
        )
        self.millis_behind_latest = Gauge(
            "esm_millis_behind_latest",
            "Kinesis MillisBehindLatest of the most recent read, the most behind of the owned shards.",
            ["mapping"],
            multiprocess_mode="livemax",
            registry=r,
        )
