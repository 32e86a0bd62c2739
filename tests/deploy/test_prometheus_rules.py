"""deploy/prometheus: the alerting rules pass `promtool check rules`, their unit tests pass
`promtool test rules`, and every rule has a unit test that makes it fire."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .prometheus_server import PROMTOOL, require

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "esm-alerts.yml"
RULE_TESTS = RULES_DIR / "esm-alerts.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require(PROMTOOL), *args], capture_output=True, text=True, cwd=RULES_DIR, timeout=120
    )


def alert_names() -> list[str]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_unit_test_that_fires_it() -> None:
    tests: list[dict[str, Any]] = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = alert_names()
    assert len(names) == len(set(names))
    assert set(names) == fired, "rules without a test that fires them, or tests of unknown rules"
    assert set(names) == quiet, "every rule also needs a case where it stays quiet"


def test_the_required_situations_have_a_rule() -> None:
    assert {
        "EsmIteratorAgeHigh",
        "EsmOffsetLagGrowing",
        "EsmStreamFallingBehind",
        "EsmDestinationWritesFailing",
        "EsmThrottling",
        "EsmShardWithoutOwner",
        "EsmTrimmedCheckpoint",
        "EsmCommitFailures",
    } <= set(alert_names())
