"""Any number of processes may open one fresh SQLite store file at the same moment (issue 9: two
daemons starting together failed with "database is locked" on the switch to WAL)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from esm_processes import EsmProcess

from .opener_race import open_each_at_once

ROUNDS = 150
PROCESSES = 8


def test_processes_opening_a_fresh_file_together_all_succeed(tmp_path: Path) -> None:
    # Real processes released by a barrier per round, so the opens collide as they did when
    # daemons started together (before the fix: 14 to 48 "database is locked" in 150 x 8).
    files = [tmp_path / f"round-{index}.db" for index in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    failures = context.Queue()
    children = [
        context.Process(target=open_each_at_once, args=(files, start, failures)) for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    found = []
    while not failures.empty():
        found.append(failures.get())
    assert found == []
    assert [child.exitcode for child in children] == [0] * PROCESSES


@pytest.fixture
def shared_config(tmp_path: Path) -> Path:
    (tmp_path / "nothing-failed.jsonl").touch()
    config = tmp_path / "esm.yaml"
    config.write_text(
        f"""
Store: sqlite:///{tmp_path / "fresh.db"}
Metrics: {{Port: null}}
ControlApi: {{Port: 0, AccessKeys: [{{AccessKeyId: AKIDFRESHFILERACE, SecretAccessKey: secret}}]}}
Functions:
  - {{FunctionName: f, Endpoints: ["127.0.0.1:1"], ReservedConcurrentExecutions: 2}}
"""
    )
    return config


def test_daemons_status_and_replay_started_together_on_a_fresh_file(shared_config: Path) -> None:
    config = str(shared_config)
    destination = f"file://{shared_config.parent / 'nothing-failed.jsonl'}"
    daemons = [EsmProcess(["run", "-c", config]) for _ in range(2)]
    finishing = [EsmProcess(["status", "-c", config]) for _ in range(2)] + [
        EsmProcess(["replay", "-c", config, "--from", destination, "--to", "f"])
    ]
    try:
        for process in finishing:
            assert process.wait(timeout=60) == 0, process.stderr
        for daemon in daemons:
            # Logged once the control API opened the store; the pollers open it next.
            daemon.wait_for_line(r"control API .* on http://127\.0\.0\.1:\d+")
        time.sleep(0.5)  # let the pollers' opens happen: a failed one ends the daemon with an error
        assert [daemon.process.poll() for daemon in daemons] == [None] * 2
    finally:
        codes = [daemon.stop() for daemon in daemons]
    assert codes == [0] * 2, "\n".join(daemon.stderr for daemon in daemons)
    for process in daemons + finishing:
        assert "locked" not in process.stderr
