"""Every metric of `esm worker`, on its own registry (served with --metrics-port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Bounded label values.
OUTCOMES = ("success", "function_error", "timeout", "runtime_exit", "out_of_memory", "init_error")
INIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.cold_starts = Counter(
            "esm_worker_cold_starts_total",
            "Invocations that were the first in an on-demand execution environment",
            registry=self.registry,
        )
        self.init_duration = Histogram(
            "esm_worker_init_duration_seconds",
            "Time from starting an execution environment to its runtime being ready",
            ["initialization_type"],
            buckets=INIT_BUCKETS,
            registry=self.registry,
        )
        self.invocations = Counter(
            "esm_worker_invocations_total", "Invocations by outcome", ["outcome"], registry=self.registry
        )
        self.environments_alive = Gauge(
            "esm_worker_environments_alive",
            "Execution environments initialised and not ended",
            registry=self.registry,
        )
        # Resolved once: a labels() lookup on every invocation costs more than the increment.
        self._by_outcome = {outcome: self.invocations.labels(outcome) for outcome in OUTCOMES}

    def outcome(self, outcome: str) -> Counter:
        return self._by_outcome[outcome]
