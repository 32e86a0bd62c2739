"""One execution environment's process and what it owns: Lambda's environment variables, a
private TMPDIR (made empty, removed with the environment), its memory limit, and the pipe its
output goes through to the worker's log (`output`).

The process leads a session of its own: a terminal's Ctrl-C does not reach it (the worker decides
when environments stop), and ending the environment kills everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from esm.worker.lambda_environment import FunctionEnvironment, log_stream_name
from esm.worker.memory_limit import EnvironmentMemory, MemoryEnforcement
from esm.worker.output import LogSink, OutputPump

RECENT_LINES = 200


@dataclass(frozen=True)
class SandboxFactory:
    """What every environment of this worker shares."""

    function: FunctionEnvironment
    memory: MemoryEnforcement
    sink: LogSink
    tmp_base: Path

    def make(self, environment_id: int, initialization_type: str) -> Sandbox:
        return Sandbox(self, environment_id, initialization_type)


class Sandbox:
    def __init__(self, shared: SandboxFactory, environment_id: int, initialization_type: str) -> None:
        self._shared = shared
        self.environment_id = environment_id
        self.initialization_type = initialization_type
        self.log_stream_name = log_stream_name()
        self.tmpdir = shared.tmp_base / f"env-{environment_id}"
        # The invocation running now, which labels the environment's output lines.
        self.request_id = ""
        self.process: asyncio.subprocess.Process | None = None
        self._memory: EnvironmentMemory | None = None
        self._final_peak_mb: int | None = None
        self._pump: OutputPump | None = None
        # The current invocation's last output lines: did the runtime log its error itself?
        self._recent_output: deque[str] = deque(maxlen=RECENT_LINES)

    async def spawn(
        self, argv: list[str], *, channel_stdio: bool, runtime_api: str | None = None
    ) -> asyncio.subprocess.Process:
        """Start the process. With `channel_stdio` its stdin/stdout are pipes for the caller and only
        stderr is output; otherwise stdin is /dev/null and stdout and stderr are both output."""
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir.mkdir(parents=True)
        variables = self._shared.function.variables_for(
            os.environ,
            initialization_type=self.initialization_type,
            log_stream_name=self.log_stream_name,
            tmpdir=str(self.tmpdir),
            runtime_api=runtime_api,
        )
        self._memory = self._shared.memory.for_environment(self.environment_id)
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self._memory.wrap(argv),
                stdin=asyncio.subprocess.PIPE if channel_stdio else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if channel_stdio else write_fd,
                stderr=write_fd,
                env=variables,
                cwd=self._shared.function.task_root,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._pump = OutputPump(
            read_fd, self._shared.sink, lambda: self.request_id, self._recent_output.append
        )
        self._memory.started(self.process.pid)
        return self.process

    def invocation_started(self, request_id: str) -> None:
        self.request_id = request_id
        self._recent_output.clear()

    def output_mentions(self, *texts: str) -> bool:
        """Whether one line the environment wrote during this invocation contains every text."""
        return any(all(text in line for text in texts) for line in self._recent_output)

    @property
    def exited(self) -> bool:
        return self.process is None or self.process.returncode is not None

    def drain_output(self) -> None:
        """Write out what the environment has written so far (before its invocation ends)."""
        if self._pump is not None:
            self._pump.drain()

    def out_of_memory(self) -> bool:
        return self._memory is not None and self._memory.out_of_memory()

    def peak_mb(self) -> int:
        if self._final_peak_mb is not None:
            return self._final_peak_mb
        return self._memory.peak_mb() if self._memory is not None else 0

    async def kill(self) -> None:
        """SIGKILL the environment's whole process group and reap its process."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def release(self) -> None:
        """After the process ended: last output lines, the memory group, the TMPDIR."""
        process = self.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # anything it left running
        if self._pump is not None:
            self._pump.drain()
            self._pump.close()
        if self._memory is not None and self._final_peak_mb is None:
            self._final_peak_mb = self._memory.peak_mb()
            self._memory.release()
        await asyncio.to_thread(shutil.rmtree, self.tmpdir, True)
