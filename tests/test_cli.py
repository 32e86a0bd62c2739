"""The command line itself: --version, help texts with their defaults, -c documented everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from esm.cli import main


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"esm {version('esm')}\n"


def test_version_as_a_user_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "esm", "--version"], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"esm \d+\.\d+\.\d+\S*\n", done.stdout)


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal width


@pytest.mark.parametrize("command", ["run", "validate", "status", "replay"])
def test_config_option_is_explained_under_every_command(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert "-c FILE, --config FILE the YAML or JSON config file" in help_of(capsys, command)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (("run",), "--processes N poller processes sharing the partitions (default: 1)"),
        (("demo",), "--seconds S how long to produce records (default: 20.0)"),
        (("demo",), "--rate N records per second to produce (default: 2000)"),
        (("demo",), "--partitions N partitions of the demo's topic (default: 4)"),
        (("worker",), "--concurrency N execution environments (default: 1)"),
        (("worker",), "auto: the first that works (default: auto)"),
        (
            ("broker",),
            "--listen HOST:PORT the address to listen on, also told to clients (default: 127.0.0.1:9092)",
        ),
        (("topic", "create"), "--partitions N how many partitions (default: 1)"),
        (
            ("produce",),
            "--bootstrap-servers HOST:PORT the brokers, comma-separated (default: 127.0.0.1:9092)",
        ),
    ],
)
def test_help_shows_defaults(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...], shown: str
) -> None:
    assert shown in help_of(capsys, *command)


def test_no_default_is_shown_as_none_or_false(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (("run",), ("worker",), ("replay",), ("status",), ("demo",), ("produce",)):
        text = help_of(capsys, *command)
        assert "(default: None)" not in text
        assert "(default: False)" not in text
