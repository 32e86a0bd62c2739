"""`esm run`: the daemon. Loads the config once, serves metrics, and runs the pollers.

With `--processes 1` the poller runs in this process (one metrics registry). With N > 1 this
process supervises N spawned poller processes: they share each mapping's partitions through the
Kafka group protocol, hold function limits through the store, and write metrics in
prometheus-client's multiprocess mode, merged here. A poller that dies is restarted with
backoff. Stopping (SIGTERM/SIGINT) is two-phase in every poller: stop fetching, finish batches in
flight within ShutdownGracePeriodSeconds, commit, exit 0. A second signal exits at once
(nothing is committed that did not succeed, so nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from esm.client_logs import demote_client_lines
from esm.config import ConfigError, EsmConfig, load_config
from esm.control.server import ControlApiError, ControlApiServer
from esm.control.service import FileMappings
from esm.dispatch.tls import check_tls_files
from esm.metrics import Metrics
from esm.metrics_server import MetricsPortError, MetricsServer
from esm.poller import run_poller
from esm.status_page import status_snapshots
from esm.stores import StoreError
from esm.tls_files import TlsFileError

log = logging.getLogger("esm.daemon")

_RESTART_BACKOFF_INITIAL = 1.0
_RESTART_BACKOFF_CAP = 30.0
# A poller that ran this long is considered healthy again: its restart backoff starts over.
_STABLE_AFTER_SECONDS = 60.0


def configure_logging(prefix: str = "") -> None:
    level = os.environ.get("ESM_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"
    )
    # The Kafka clients' lines (every reconnect attempt) at DEBUG: esm says what matters itself.
    demote_client_lines(logging.getLogger().getEffectiveLevel())


def _load(config_path: str) -> EsmConfig | None:
    try:
        loaded = load_config(config_path)
    except ConfigError as err:
        print(f"esm: {config_path} is not a valid config:\n{err}", file=sys.stderr)
        return None
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.config


def run_daemon(config_path: str, processes: int) -> int:
    configure_logging()
    if processes < 1:
        print(f"esm: --processes must be at least 1, got {processes}", file=sys.stderr)
        return 2
    config = _load(config_path)
    if config is None:
        return 1
    control: ControlApiServer | None = None
    try:
        check_tls_files(config.Functions)
        control = _start_control_api(config_path, config)
        if processes == 1:
            return _run_in_process(config)
        return Supervisor(config_path, config, processes).run()
    except (MetricsPortError, StoreError, ControlApiError, TlsFileError) as err:
        print(f"esm: {err}", file=sys.stderr)
        return 1
    finally:
        if control is not None:
            control.stop()


def _start_control_api(config_path: str, config: EsmConfig) -> ControlApiServer | None:
    """The control API, served by this (the supervising) process for every poller, if configured."""
    if config.ControlApi is None:
        return None
    file = FileMappings(config_path, config.EventSourceMappings, os.path.getmtime(config_path))
    server = ControlApiServer(config.ControlApi, config, file)
    server.start()
    return server


@dataclass
class HealthFlag:
    """Whether the pollers run (read by the metrics thread for /healthz)."""

    ok: bool = False

    def get(self) -> bool:
        return self.ok


def _start_metrics(
    config: EsmConfig, registry: CollectorRegistry, healthy: HealthFlag
) -> MetricsServer | None:
    if config.Metrics.Port is None:
        return None
    server = MetricsServer(
        config.Metrics.Host, config.Metrics.Port, registry, healthy.get, status_snapshots(config, healthy.get)
    )
    server.start()
    log.info("metrics on http://%s:%d/metrics", config.Metrics.Host, server.port)
    return server


def _run_in_process(config: EsmConfig) -> int:
    registry = CollectorRegistry()
    health = HealthFlag()
    server = _start_metrics(config, registry, health)
    try:
        asyncio.run(_serve(config, Metrics(registry), health, shared=False))
    finally:
        if server is not None:
            server.stop()
    log.info("stopped")
    return 0


async def _serve(config: EsmConfig, metrics: Metrics, health: HealthFlag, shared: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal: exiting now; unfinished batches will be re-delivered")
            os._exit(130)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    health.ok = True
    # What start-up made (modules, config, clients) lives as long as the process: out of the
    # collector's reach, a full collection no longer walks it (~45 ms on a 2-core machine, a
    # pause every record in flight would wait out: the latency tail).
    gc.freeze()
    try:
        await run_poller(config, metrics, stop, shared)
    finally:
        health.ok = False


# -- several poller processes ---------------------------------------------------------------


def poller_process_main(config_path: str, index: int, parent_pid: int) -> None:
    """Entry point of a spawned poller process."""
    _die_with_parent(parent_pid)
    configure_logging(prefix=f"[poller {index}] ")
    config = _load(config_path)
    if config is None:
        sys.exit(1)
    try:
        asyncio.run(_serve(config, Metrics(None), HealthFlag(), shared=True))
    except StoreError as err:
        log.error("%s", err)
        sys.exit(1)


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this process when the supervisor dies (even by kill -9)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


@dataclass
class _Child:
    index: int
    process: BaseProcess
    started: float
    failures: int = 0


class Supervisor:
    def __init__(self, config_path: str, config: EsmConfig, processes: int) -> None:
        self._config_path = config_path
        self._config = config
        self._processes = processes
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        metrics_dir = tempfile.mkdtemp(prefix="esm-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        children: dict[int, _Child] = {}
        health = HealthFlag()
        server = _start_metrics(self._config, registry, health)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            for index in range(self._processes):
                children[index] = self._spawn(index, failures=0)
            log.info("started %d poller processes", self._processes)
            restart_at: dict[int, float] = {}
            while not self._stop.wait(0.2):
                health.ok = all(c.process.is_alive() for c in children.values())
                for index, child in children.items():
                    if child.process.is_alive() or index in restart_at:
                        continue
                    mark_process_dead(child.process.pid, metrics_dir)  # type: ignore[no-untyped-call]
                    ran = time.monotonic() - child.started
                    failures = 0 if ran > _STABLE_AFTER_SECONDS else child.failures + 1
                    delay = min(_RESTART_BACKOFF_CAP, _RESTART_BACKOFF_INITIAL * 2 ** max(0, failures - 1))
                    log.error(
                        "poller %d exited with code %s; restarting in %.0fs",
                        index,
                        child.process.exitcode,
                        delay,
                    )
                    child.failures = failures
                    restart_at[index] = time.monotonic() + delay
                for index, when in list(restart_at.items()):
                    if time.monotonic() >= when:
                        del restart_at[index]
                        children[index] = self._spawn(index, children[index].failures)
            self._stop_children(list(children.values()))
        finally:
            if server is not None:
                server.stop()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("stopped")
        return 0

    def _spawn(self, index: int, failures: int) -> _Child:
        process = self._context.Process(
            target=poller_process_main,
            args=(self._config_path, index, os.getpid()),
            name=f"esm-poller-{index}",
        )
        process.start()
        return _Child(index, process, time.monotonic(), failures)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stop.is_set():
            log.warning("second signal: exiting now; unfinished batches will be re-delivered")
            os._exit(130)
        self._stop.set()

    def _stop_children(self, children: list[_Child]) -> None:
        for child in children:
            if child.process.is_alive() and child.process.pid is not None:
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._config.ShutdownGracePeriodSeconds + 15
        for child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.error("poller %d did not stop in time; killing it", child.index)
                child.process.kill()
                child.process.join()
