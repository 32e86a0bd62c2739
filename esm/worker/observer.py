"""What the worker writes and counts about environments and invocations: START/END/REPORT and
`[ERROR]` lines in its log, and its metrics."""

from __future__ import annotations

from esm.worker.function_error import FunctionError
from esm.worker.lambda_environment import ON_DEMAND
from esm.worker.metrics import WorkerMetrics
from esm.worker.output import LogSink
from esm.worker.report import ReportFacts, end_line, error_lines, report_line, start_line


class InvocationObserver:
    def __init__(self, sink: LogSink, metrics: WorkerMetrics) -> None:
        self._sink = sink
        self._metrics = metrics

    def environment_started(self, initialization_type: str, init_duration_ms: float) -> None:
        self._metrics.init_duration.labels(initialization_type).observe(init_duration_ms / 1000)
        self._metrics.environments_alive.inc()

    def environment_ended(self) -> None:
        self._metrics.environments_alive.dec()

    def invocation_started(self, request_id: str, version: str) -> None:
        self._sink.begin(request_id, start_line(request_id, version))

    def invocation_finished(self, facts: ReportFacts, outcome: str, error: FunctionError | None) -> None:
        """The error (once per attempt, with its trace), END and REPORT (with Init Duration on a
        cold start, as Lambda reports them)."""
        if error is not None:
            self._sink.labelled(error_lines(error), facts.request_id)
        self._sink.finish(facts.request_id, [end_line(facts.request_id), report_line(facts)])
        self._metrics.outcome(outcome).inc()
        if facts.init_duration_ms is not None:
            self._metrics.cold_starts.inc()


def is_cold_start(initialization_type: str, first_in_environment: bool) -> bool:
    """Lambda's cold start: the first invocation of an on-demand environment."""
    return first_in_environment and initialization_type == ON_DEMAND
