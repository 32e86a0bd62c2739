from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from esm.demo.children import RUN_MARKER_ENV, ChildProcess, marked_processes, sweep_marked

# A child that ignores SIGTERM and would run for a minute unless killed.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    "time.sleep(60)"
)


def test_sweep_kills_what_carries_the_marker_and_nothing_else(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    marked = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], env={**os.environ, RUN_MARKER_ENV: marker}, stdout=subprocess.PIPE
    )
    other = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], env={**os.environ, RUN_MARKER_ENV: "other"}, stdout=subprocess.PIPE
    )
    try:
        for process in (marked, other):
            assert process.stdout is not None and process.stdout.readline() == b"up\n"
        assert marked_processes(marker) == [marked.pid]
        assert sweep_marked(marker) == [marked.pid]
        assert marked.wait(timeout=10) == -9
        assert other.poll() is None
        assert marked_processes(marker) == []
    finally:
        for process in (marked, other):
            process.kill()
            process.wait()


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    child = ChildProcess(
        "stubborn",
        [sys.executable, "-c", STUBBORN],
        tmp_path / "child.log",
        cwd=tmp_path,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 30
        while "up" not in child.log_tail():  # SIGTERM is ignored only from then on
            assert child.exit_code() is None and time.monotonic() < deadline, child.log_tail()
            time.sleep(0.01)  # waiting for a real process to start
        assert child.stop(grace_s=0.5) == -9
    finally:
        child.stop(grace_s=0)
    assert child.exit_code() == -9
