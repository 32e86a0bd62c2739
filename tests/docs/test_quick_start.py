"""The README's Quick start, run as written: its files and commands are taken from the README
text itself, so the two cannot drift apart. The fixed ports become free ones and HOME a folder of
the test's own; everything else is the README's, run by bash as a user would paste it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from esm_processes import REPO

from esm.netutil import free_port

from .quick_start import Commands, Expected, QuickStart, fixed_ports, line_pattern, parse, section, with_ports

README = REPO / "README.md"
WAIT_FOR_OUTPUT_S = 60.0
STOP_TIMEOUT_S = 45.0


def test_the_section_has_what_a_user_needs() -> None:
    quick_start = parse(section(README.read_text()))
    assert ". .venv/bin/activate" in quick_start.setup
    assert set(quick_start.files) == {"app.py", "esm.yaml"}
    kept_running = [
        step.script.strip().splitlines()[-1].split()[:2]
        for step in quick_start.steps
        if isinstance(step, Commands) and step.keeps_running
    ]
    assert kept_running == [["esm", "broker"], ["esm", "worker"], ["esm", "run"]]


@pytest.mark.parametrize(
    ("expected", "line", "matches"),
    [
        (
            "START RequestId: <request id> Version: $LATEST",
            "START RequestId: 6f1b2c3e-0000-4000-8000-0123456789ab Version: $LATEST",
            True,
        ),
        (
            "<time>\t<request id>\tprocessed order o-1",
            "2026-12-07T06:47:53.908Z\t88634eb7-927f-47b6-a0be-c2dcd71f04bd\tprocessed order o-1",
            True,
        ),
        (
            "<time>\t<request id>\tprocessed order o-1",
            "2026-12-07T06:47:53.908Z\t88634eb7-927f-47b6-a0be-c2dcd71f04bd\tprocessed order o-10",
            False,
        ),
        ("  part  owner  committed", "  part  owner                     committed", True),
        ("... INFO x: y", "2026-12-07 06:47:48,328 INFO x: y", True),
        ("OK: 1 function, 1 mapping", "OK: 2 functions, 1 mapping", False),
    ],
)
def test_expected_lines_allow_for_what_varies_and_nothing_else(
    expected: str, line: str, matches: bool
) -> None:
    assert bool(line_pattern(expected).match(line)) is matches


def test_fixed_ports_are_replaced_everywhere() -> None:
    text = 'Endpoints: ["127.0.0.1:50051"]\nMetrics: {Port: 9108}\nesm broker --listen 127.0.0.1:9092 9092'
    assert fixed_ports(text) == [50051, 9108, 9092]
    assert with_ports(text, {50051: 1, 9108: 2, 9092: 3}) == (
        'Endpoints: ["127.0.0.1:1"]\nMetrics: {Port: 2}\nesm broker --listen 127.0.0.1:3 9092'
    )


class Terminals:
    """The user's terminals: each command block a bash run with the set-up first, output to a file."""

    def __init__(self, quick_start: QuickStart, home: Path, logs: Path) -> None:
        self._setup = quick_start.setup
        self.env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.env.pop("VIRTUAL_ENV", None)
        self._logs = logs
        self.running: list[tuple[Commands, subprocess.Popen[bytes]]] = []
        self._count = 0

    def bash(self, script: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                ["bash", "-e", "-c", f"{self._setup}\n{script}"],
                cwd=REPO,  # where the README's terminals start
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a terminal's job is
            )

    def run(self, step: Commands) -> None:
        self._count += 1
        log = self._logs / f"{self._count:02d}-terminal-{step.terminal}.log"
        process = self.bash(step.script, log)
        if step.keeps_running:
            self.running.append((step, process))
            return
        assert process.wait(timeout=120) == 0, (
            f"terminal {step.terminal} failed:\n{step.script}\n{log.read_text()}"
        )

    def output_lines(self) -> list[str]:
        return [line for log in sorted(self._logs.glob("*.log")) for line in log.read_text().splitlines()]

    def ctrl_c_all(self) -> list[int | None]:
        """Ctrl-C in each terminal that keeps running, the last started first, as the README says."""
        codes = []
        for _, process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            try:
                codes.append(process.wait(timeout=STOP_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes.append(None)
        return codes

    def wait_for(self, expected: Expected) -> None:
        patterns = [line_pattern(line) for line in expected.lines]
        deadline = time.monotonic() + WAIT_FOR_OUTPUT_S
        while True:
            lines = self.output_lines()
            missing = [p.pattern for p in patterns if not any(p.match(line) for line in lines)]
            if not missing:
                return
            ended = [(step.terminal, p.returncode) for step, p in self.running if p.poll() is not None]
            if ended or time.monotonic() > deadline:
                shown = "\n".join(lines)
                raise AssertionError(f"not seen: {missing}\nended early: {ended}\noutput so far:\n{shown}")
            time.sleep(0.2)  # polling real processes' output


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[tuple[Terminals, QuickStart]]:
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip(f"the Quick start activates {REPO / '.venv'}; this run's Python is {sys.prefix}")
    text = section(README.read_text())
    ports = {port: free_port() for port in fixed_ports(text)}
    quick_start = parse(with_ports(text, ports))
    home = tmp_path / "home"
    home.mkdir()
    logs = tmp_path / "terminals"
    logs.mkdir()
    opened = Terminals(quick_start, home, logs)
    try:
        yield opened, quick_start
    finally:
        opened.ctrl_c_all()


@pytest.mark.integration
def test_the_quick_start_runs_as_written(terminals: tuple[Terminals, QuickStart]) -> None:
    shell, quick_start = terminals
    folder = subprocess.run(
        ["bash", "-e", "-c", f"{quick_start.setup}\npwd"],
        cwd=REPO,
        env=shell.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name, content in quick_start.files.items():
        (Path(folder) / name).write_text(content)
    for step in quick_start.steps:
        if isinstance(step, Commands):
            shell.run(step)
        else:
            shell.wait_for(step)
    codes = shell.ctrl_c_all()
    assert codes == [0] * len(codes), shell.output_lines()
    assert len(codes) == 3  # broker, worker, daemon
