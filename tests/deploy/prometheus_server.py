"""A real Prometheus (Debian's `prometheus` package, installed by scripts/test.sh) for tests:
scrapes the given targets every second, loads the given rule files, answers PromQL over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from esm.netutil import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
READY_SECONDS = 30.0


def require(program: str) -> str:
    if shutil.which(program) is None:
        pytest.fail(
            f"{program} is missing: scripts/test.sh installs Debian's prometheus package", pytrace=False
        )
    return program


class PrometheusApi:
    """Prometheus's HTTP API on 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        self.port = port

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; an error answer fails with Prometheus's own words."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, once each has been evaluated (else [])."""
        rules = [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
        evaluated = all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)
        return rules if evaluated else []

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False


class Prometheus(PrometheusApi):
    """Debian's prometheus binary as a subprocess, scraping `targets` every second."""

    def __init__(self, workdir: Path, targets: list[str], rule_files: list[Path]) -> None:
        super().__init__(free_port())
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": "esm", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self._log = (workdir / "prometheus.log").open("w")
        self._process = subprocess.Popen(
            [
                require(PROMETHEUS),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._logfile = workdir / "prometheus.log"

    def wait_ready(self) -> Prometheus:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"prometheus exited {self._process.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in {READY_SECONDS}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self._logfile.read_text()[-3000:]

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
