"""`esm demo` end to end, as a user runs it: a subprocess (not a TTY), its summary, its children."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from esm.demo.workdir import DemoWorkdir

pytestmark = pytest.mark.integration

# Inherited by every process the demo starts (broker, worker, its environments, daemon).
MARKER_ENV = "ESM_DEMO_TEST_MARKER"


def processes_with(marker: str) -> list[int]:
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat.rpartition(")")[2].split()[0] != "Z":
            found.append(int(entry.name))
    return found


def summary_number(output: str, label: str) -> int:
    match = re.search(rf"^\s+{label}:\s+([\d,]+)", output, re.MULTILINE)
    assert match, f"no {label!r} line in the output:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_demo_delivers_everything_it_produces_and_leaves_no_process(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER_ENV: marker, "TMPDIR": str(tmp_path)}  # the demo's directory lands here
    earlier = DemoWorkdir.create(tmp_path)  # a folder an ended demo left
    earlier.release()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "esm", "demo", "--seconds", "3", "--rate", "200"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=150,
        )
        output = done.stdout
        assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{output}\nstderr:\n{done.stderr}"
        produced = summary_number(output, "records produced")
        delivered = summary_number(output, "records delivered")
        committed = summary_number(output, "offsets committed")
        assert produced == 600  # 3 s at 200 records/s, every one acknowledged
        assert delivered == produced
        assert committed == produced
        assert "all 600 records produced were delivered" in output
        # Not a TTY: plain progress lines, no carriage returns.
        assert "\r" not in output
        assert re.search(r"^\s*\d+\.\d+s produced [\d,]+ delivered [\d,]+", output, re.MULTILINE), output
        # The handler measured end-to-end latency for every record.
        assert re.search(r"end-to-end latency: p50 [\d.]+ ms, p99 [\d.]+ ms, .*600 records", output), output
        logs_line = re.search(r"^\s+logs:\s+(\S+)/ ", output, re.MULTILINE)
        assert logs_line, output
        logs = Path(logs_line.group(1))
        assert logs.parent == tmp_path
        assert (
            f"esm demo: logs, config and store go to {logs}/, left there for you to read; "
            "the next demo removes it unless run with --keep-old (removed 1 older demo folder)"
        ) in output
        assert not earlier.path.exists()
        assert "esm worker: serving esm.demo.handler.handler" in (logs / "worker.log").read_text()
        assert "esm.daemon: stopped" in (logs / "daemon.log").read_text()
    finally:
        left = processes_with(marker)
        for pid in left:  # do not leave them to the next test either
            os.kill(pid, 9)
    assert left == [], f"processes still running after the demo exited: {left}"


def test_bad_arguments_are_refused_before_anything_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "esm", "demo", "--rate", "0"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--rate must be at least 1 record per second, got 0" in done.stderr
