"""`esm demo`: the whole pipeline on one machine, with no services to install.

    Tansu broker (bundled) -> topic `orders` -> esm run (SQLite store) -> esm worker (demo handler)
           ^ producer thread: JSON orders at --rate/s for --seconds

Steps: start the broker on a free loopback port and create the topic; start `esm worker` with
the demo handler and `esm run` with a generated config; wait until the daemon owns every
partition; produce, showing live progress from the daemon's /metrics; wait (bounded) until
everything produced is delivered; stop the daemon, then the worker (SIGTERM, their graceful
shutdown), read the group's committed offsets, stop the broker; print the summary.

Every process it starts is stopped on the way out, whatever happened (`finally`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from esm.config import ConfigError, parse_config
from esm.demo.children import RUN_MARKER_ENV, ChildProcess, sweep_marked
from esm.demo.config import FUNCTION_NAME, SHUTDOWN_GRACE_S, DemoSetup, demo_config, write_demo_config
from esm.demo.engine_metrics import EngineSnapshot, scrape
from esm.demo.handler import LATENCY_DIR_ENV
from esm.demo.launch import LaunchError, start_daemon, start_worker, wait_engine_ready
from esm.demo.producer import CLOSE_TIMEOUT_S, PacedProducer, ProducerError
from esm.demo.progress import ProgressDisplay, ProgressFigures, RateWindow, format_progress
from esm.demo.stop_requests import StopRequested, StopRequests, handled_signals
from esm.demo.summary import DemoResult, all_delivered, summary_lines
from esm.demo.workdir import open_demo_folder
from esm.embedded import KafkaHelperError, TansuBroker, TansuError, committed_offsets, create_topic
from esm.netutil import free_port

TOPIC = "orders"
CONSUMER_GROUP = "esm-demo-orders"
MAX_WORKER_CONCURRENCY = 8
DRAIN_TIMEOUT_S = 30.0
WATCH_TICK_S = 0.25
DAEMON_STOP_GRACE_S = SHUTDOWN_GRACE_S + 10.0
WORKER_STOP_GRACE_S = 20.0
CONFIG_NAME = "esm-demo.yaml"
LOG_NAMES = ("daemon.log", "worker.log", "tansu.log")


@dataclass(frozen=True)
class DemoOptions:
    seconds: float
    rate: int
    partitions: int


def option_problem(options: DemoOptions) -> str | None:
    """Why the options cannot run, naming the flag; None when they can."""
    if not options.seconds > 0:
        return f"--seconds must be greater than 0, got {options.seconds}"
    if options.rate < 1:
        return f"--rate must be at least 1 record per second, got {options.rate}"
    if options.partitions < 1:
        return f"--partitions must be at least 1, got {options.partitions}"
    if int(options.seconds * options.rate) < 1:
        return f"--seconds {options.seconds} at --rate {options.rate} produces no record"
    return None


def run_demo(
    seconds: float, rate: int, partitions: int, keep_old: bool = False, out: TextIO | None = None
) -> int:
    """The `esm demo` command; returns the exit status (0: everything produced was delivered)."""
    stream = out or sys.stdout
    options = DemoOptions(seconds, rate, partitions)
    problem = option_problem(options)
    if problem is not None:
        print(f"esm demo: {problem}", file=sys.stderr)
        return 2
    base = Path(tempfile.gettempdir())
    try:
        folder, where = open_demo_folder(base, keep_old)
    except OSError as exc:
        print(f"esm demo: cannot make its folder in {base}: {exc}", file=sys.stderr)
        return 1
    print(where, file=stream)
    try:
        return _run_in(folder.path, options, stream)
    finally:
        folder.release()


def _run_in(workdir: Path, options: DemoOptions, stream: TextIO) -> int:
    with handled_signals(StopRequests()) as stops:
        demo = Demo(options, workdir, stops, stream)
        try:
            result = demo.run()
        except (LaunchError, ProducerError, TansuError, KafkaHelperError, ConfigError, StopRequested) as exc:
            demo.display.close_line()
            print(f"esm demo: {exc}", file=sys.stderr)
            print(f"esm demo: logs are in {workdir}/ ({', '.join(LOG_NAMES)})", file=sys.stderr)
            return 1
    for line in summary_lines(result):
        print(line, file=stream)
    return 0 if all_delivered(result) else 1


class Demo:
    def __init__(
        self,
        options: DemoOptions,
        workdir: Path,
        stops: StopRequests,
        out: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._workdir = workdir
        self._stops = stops
        self._clock = clock
        self.display = ProgressDisplay(out, out.isatty(), shutil.get_terminal_size().columns)
        self._marker = uuid.uuid4().hex
        self._latency_dir = workdir / "latency"
        self._broker = TansuBroker(log_path=workdir / "tansu.log")
        self._worker: ChildProcess | None = None
        self._daemon: ChildProcess | None = None
        self._producer: PacedProducer | None = None
        self._metrics_url = ""
        self._snapshot: EngineSnapshot | None = None
        self._produce_started = 0.0
        self._finished = 0.0

    def run(self) -> DemoResult:
        try:
            bootstrap = self._start()
            producer = self._start_producer(bootstrap)
            self._watch(producer)
            self._stop_engine()
            committed = self._committed(bootstrap)
            return self._result(producer, committed)
        finally:
            self._stop_everything()

    # -- start-up -----------------------------------------------------------------------------

    def _start(self) -> str:
        partitions = self._options.partitions
        self._say("starting the bundled Kafka-compatible broker (Tansu)")
        bootstrap = self._broker.start()
        create_topic(bootstrap, TOPIC, partitions)
        self._say(f"broker on {bootstrap}; topic {TOPIC!r} with {partitions} partitions")
        self._stops.raise_if_stopping("starting the broker")

        concurrency = min(partitions, MAX_WORKER_CONCURRENCY)
        self._latency_dir.mkdir()
        self._worker, endpoint = start_worker(
            FUNCTION_NAME,
            concurrency,
            self._workdir,
            self._child_env({LATENCY_DIR_ENV: str(self._latency_dir)}),
            self._stops,
        )
        self._say(
            f"esm worker serving {FUNCTION_NAME} (esm.demo.handler) on {endpoint}, {concurrency} environments"
        )

        metrics_port = free_port()
        setup = DemoSetup(
            bootstrap,
            TOPIC,
            CONSUMER_GROUP,
            endpoint,
            concurrency,
            self._workdir / "esm-state.db",
            metrics_port,
        )
        parse_config(demo_config(setup), source=CONFIG_NAME)  # a format mismatch fails here, clearly
        config_path = write_demo_config(self._workdir / CONFIG_NAME, setup)
        self._metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self._daemon = start_daemon(config_path, self._workdir, self._child_env({}))
        self._say(f"esm run -c {config_path}: waiting for it to join consumer group {CONSUMER_GROUP!r}")
        wait_engine_ready(self._daemon, self._metrics_url, partitions, self._stops)
        self._say(f"esm run owns all {partitions} partitions; metrics on {self._metrics_url}")
        return bootstrap

    def _child_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        # The children import the same esm as this process, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        env[RUN_MARKER_ENV] = self._marker
        env.update(extra)
        return env

    def _start_producer(self, bootstrap: str) -> PacedProducer:
        options = self._options
        producer = PacedProducer(bootstrap, TOPIC, options.rate, options.seconds, clock=self._clock)
        self._say(
            f"producing {options.rate:,} JSON orders/s for {options.seconds:g} s "
            f"({producer.planned:,} records); Ctrl-C stops early"
        )
        self._producer = producer
        self._produce_started = self._clock()
        producer.start()
        return producer

    # -- running ------------------------------------------------------------------------------

    def _watch(self, producer: PacedProducer) -> None:
        """Show progress until everything produced is delivered, the drain times out, or Ctrl-C twice."""
        window = RateWindow(1.0)
        drain_deadline: float | None = None
        while True:
            now = self._clock()
            self._check_children()
            if producer.error is not None:
                raise ProducerError(f"the producer failed: {producer.error!r}")
            snapshot = scrape(self._metrics_url)
            if snapshot is not None:
                self._snapshot = snapshot
                window.add(now, snapshot.delivered)
            if self._stops.stopping and not producer.is_done():
                producer.stop()
            phase = "producing"
            if producer.is_done():
                phase = "waiting for delivery"
                if drain_deadline is None:
                    drain_deadline = now + DRAIN_TIMEOUT_S
                    if self._stops.stopping:
                        self._say("stopping early: waiting for what was produced (Ctrl-C again to skip)")
                delivered = self._snapshot.delivered if self._snapshot else 0
                done = delivered >= producer.acknowledged
                if done or now >= drain_deadline or self._stops.skip_drain:
                    self._finished = now
                    self._show(now, producer, window, "done" if done else "stopped waiting", force=True)
                    if not done and not self._stops.skip_drain:
                        self._say(f"gave up waiting for delivery after {DRAIN_TIMEOUT_S:.0f} s")
                    break
            self._show(now, producer, window, phase)
            time.sleep(WATCH_TICK_S)  # the next scrape; the engine runs in other processes
        self.display.close_line()

    def _show(
        self, now: float, producer: PacedProducer, window: RateWindow, phase: str, force: bool = False
    ) -> None:
        figures = ProgressFigures(
            elapsed_s=now - self._produce_started,
            produced=producer.acknowledged,
            engine=self._snapshot,
            delivered_per_s=window.per_second(),
            phase=phase,
        )
        self.display.update(now, format_progress(figures), force=force)

    def _check_children(self) -> None:
        for child in (self._daemon, self._worker):
            if child is not None and child.exit_code() is not None:
                raise LaunchError(child.describe_exit())

    # -- shutdown -----------------------------------------------------------------------------

    def _stop_engine(self) -> None:
        """Graceful, in order: producer, daemon (finishes batches in flight, commits), worker."""
        self._stop_producer()
        last = scrape(self._metrics_url)
        if last is not None:
            self._snapshot = last
        self._say("stopping esm run and esm worker (SIGTERM: graceful shutdown)")
        self._stop_children()

    def _stop_producer(self) -> None:
        if self._producer is not None:
            self._producer.stop()
            self._producer.join(CLOSE_TIMEOUT_S + 5.0)

    def _stop_children(self) -> None:
        if self._daemon is not None:
            self._daemon.stop(DAEMON_STOP_GRACE_S)
        if self._worker is not None:
            self._worker.stop(WORKER_STOP_GRACE_S)

    def _stop_everything(self) -> None:
        """Whatever is still running, whatever happened: no process outlives the demo."""
        with contextlib.suppress(Exception):
            self._stop_producer()
        try:
            self._stop_children()
        finally:
            leftovers = sweep_marked(self._marker)
            if leftovers:
                self._say(f"killed processes left over by the children: {leftovers}")
            self._broker.stop()

    def _committed(self, bootstrap: str) -> int | None:
        try:
            return sum(committed_offsets(bootstrap, CONSUMER_GROUP, TOPIC).values())
        except Exception as exc:  # the summary says it is unknown; the demo still shuts down cleanly
            self._say(f"could not read the committed offsets: {exc!r}")
            return None

    # -- result -------------------------------------------------------------------------------

    def _result(self, producer: PacedProducer, committed: int | None) -> DemoResult:
        snapshot = self._snapshot
        return DemoResult(
            produced=producer.acknowledged,
            produce_failures=producer.failed,
            delivered=snapshot.delivered if snapshot else 0,
            committed=committed,
            consumer_group=CONSUMER_GROUP,
            active_seconds=self._finished - self._produce_started,
            invocations=snapshot.invocations if snapshot else 0,
            errors=snapshot.errors if snapshot else 0,
            latencies_ms=read_latencies(self._latency_dir),
            workdir=self._workdir,
            log_names=LOG_NAMES,
            config_name=CONFIG_NAME,
            interrupted=self._stops.stopping,
        )

    def _say(self, text: str) -> None:
        self.display.message(f"esm demo: {text}")


def read_latencies(directory: Path) -> list[float]:
    """Every latency the handler wrote (ms), from its per-process files."""
    values: list[float] = []
    for path in sorted(directory.glob("latency-*.txt")):
        values.extend(float(line) for line in path.read_text().split())
    return values
