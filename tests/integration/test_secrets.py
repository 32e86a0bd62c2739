"""No secret in any output of a run: a daemon and a worker run with every kind of secret configured
(a Redis password in the store URL and in a destination URL, a SASL password, the TLS private keys
of both sides, the control API's secret key), with connections that fail (a broker that does not
speak SASL, a destination with a wrong password) next to ones that work; every output is collected
(both processes' stdout and stderr, /metrics of both, the status page and /status, `esm status`
as text and JSON, the failure records file) and searched for each secret."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from esm_processes import REPO
from redis_tls import tls_redis
from tls_certs import make_ca

from esm.embedded.topics import OutgoingRecord, produce
from esm.netutil import free_port

from .harness import FAST_GROUP, mapping, wait_committed, wait_until

REDIS_PASSWORD = "redis-pw-5e1f0b7a"
WRONG_REDIS_PASSWORD = "wrong-redis-pw-77c2"
SASL_PASSWORD = "sasl-pw-c0ffee42"
CONTROL_SECRET = "control-secret-9a8b7c6d5e4f3a2b1c0d"


def key_fragments(key_file: Path) -> list[str]:
    """The lines of a PEM private key's body: any of them in an output is a leak."""
    return [line for line in key_file.read_text().splitlines() if line and not line.startswith("-----")]


def spawn(args: list[str], out: Path, err: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "esm", *args],
        cwd=REPO,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        # DEBUG: every line esm and the client libraries write (theirs are demoted to DEBUG) is
        # searched for secrets, and the SASL attempt below shows in the client's own lines.
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "ESM_LOG_LEVEL": "DEBUG"},
    )


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_no_secret_reaches_any_output(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "ca")
    worker_cert, daemon_cert = ca.issue("worker"), ca.issue("daemon")
    good, sasl, held = new_topic(partitions=1), new_topic(partitions=1), new_topic(partitions=1)
    for topic in (good, held):
        produce(kafka_broker, topic, [OutgoingRecord(value=v, partition=0) for v in (b"a", b"poison", b"b")])
    failures = tmp_path / "failures.jsonl"
    worker_port, worker_metrics, daemon_metrics = free_port(), free_port(), free_port()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    with tls_redis(tmp_path / "redis", REDIS_PASSWORD) as redis_server:
        config = {
            "Store": redis_server.url("prefix=secrets"),
            "Metrics": {"Port": daemon_metrics, "Host": "127.0.0.1"},
            "ShutdownGracePeriodSeconds": 5,
            "ControlApi": {
                "Port": free_port(),
                "AccessKeys": [{"AccessKeyId": "AKIAESMTESTKEY000001", "SecretAccessKey": CONTROL_SECRET}],
            },
            "Functions": [
                {
                    "FunctionName": "fn",
                    "Endpoints": [f"127.0.0.1:{worker_port}"],
                    "Timeout": 5,
                    "Tls": {
                        "CaFile": str(ca.cert),
                        "CertFile": str(daemon_cert.cert),
                        "KeyFile": str(daemon_cert.key),
                    },
                }
            ],
            "EventSourceMappings": [
                mapping(
                    kafka_broker,
                    good,
                    f"g-{good}",
                    MaximumRetryAttempts=0,
                    DestinationConfig={"OnFailure": {"Destination": f"file://{failures}"}},
                ),
                mapping(
                    kafka_broker,
                    sasl,
                    f"g-{sasl}",
                    KafkaConsumerConfig={
                        **FAST_GROUP,
                        "security.protocol": "SASL_PLAINTEXT",
                        "sasl.mechanism": "PLAIN",
                        "sasl.plain.username": "esm",
                        "sasl.plain.password": SASL_PASSWORD,
                        # Fail fast: a stopping daemon waits for a bootstrap in progress.
                        "bootstrap.timeout.ms": 2000,
                        "reconnect.backoff.max.ms": 500,
                    },
                ),
                mapping(
                    kafka_broker,
                    held,
                    f"g-{held}",
                    MaximumRetryAttempts=0,
                    DestinationConfig={
                        "OnFailure": {
                            "Destination": redis_server.url("stream=f", password=WRONG_REDIS_PASSWORD)
                        }
                    },
                ),
            ],
        }
        config_file = tmp_path / "esm.json"
        config_file.write_text(json.dumps(config))
        worker = spawn(
            [
                "worker",
                "tests.handlers.recorder:handler",
                "--listen",
                f"127.0.0.1:{worker_port}",
                "--function-name",
                "fn",
                "--metrics-port",
                str(worker_metrics),
                "--env",
                f"ESM_RECORDER_FILE={tmp_path / 'events.jsonl'}",
                "--env",
                "ESM_RECORDER_FAIL_VALUE=poison",
                "--tls-cert",
                str(worker_cert.cert),
                "--tls-key",
                str(worker_cert.key),
                "--tls-client-ca",
                str(ca.cert),
            ],
            outputs / "worker.out",
            outputs / "worker.err",
        )
        engine = spawn(["run", "-c", str(config_file)], outputs / "daemon.out", outputs / "daemon.err")
        try:
            wait_committed(kafka_broker, f"g-{good}", good, 3)
            wait_until(
                lambda: "on-failure destination failed" in (outputs / "daemon.err").read_text(),
                timeout=30,
                message="the wrong destination password to fail",
            )
            time.sleep(1.0)  # the SASL mapping keeps failing meanwhile
            (outputs / "daemon.metrics").write_text(http_get(f"http://127.0.0.1:{daemon_metrics}/metrics"))
            (outputs / "worker.metrics").write_text(http_get(f"http://127.0.0.1:{worker_metrics}/metrics"))
            (outputs / "status-page.html").write_text(http_get(f"http://127.0.0.1:{daemon_metrics}/"))
            (outputs / "status.json").write_text(http_get(f"http://127.0.0.1:{daemon_metrics}/status"))
            for name, extra in (("esm-status.txt", []), ("esm-status.json", ["--json"])):
                result = subprocess.run(
                    [sys.executable, "-m", "esm", "status", "-c", str(config_file), *extra],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                (outputs / name).write_text(result.stdout + result.stderr)
        finally:
            engine.terminate()
            engine.wait(timeout=40)
            worker.terminate()
            worker.wait(timeout=40)
    collected = {path.name: path.read_text(errors="replace") for path in sorted(outputs.iterdir())}
    collected["failures.jsonl"] = failures.read_text()
    assert "RetryAttemptsExhausted" in collected["failures.jsonl"]
    assert "on-failure destination failed" in collected["daemon.err"]
    # The SASL settings reached the Kafka client: it tried SASL, and the bundled broker refused it.
    assert "UnsupportedSaslMechanismError" in collected["daemon.err"]
    secrets = {
        "Redis password": REDIS_PASSWORD,
        "wrong Redis password": WRONG_REDIS_PASSWORD,
        "SASL password": SASL_PASSWORD,
        "control API secret": CONTROL_SECRET,
    }
    for side, key in (("worker", worker_cert.key), ("daemon", daemon_cert.key)):
        for index, fragment in enumerate(key_fragments(key)):
            secrets[f"{side} TLS key line {index}"] = fragment
    config_text = config_file.read_text()  # the search would find them: they are in the config
    assert all(secret in config_text for secret in list(secrets.values())[:4])
    leaks = [
        f"{what} in {name}"
        for what, secret in secrets.items()
        for name, text in collected.items()
        if secret in text
    ]
    assert leaks == [], leaks
    assert all(collected[name] for name in ("daemon.err", "daemon.metrics", "worker.metrics", "status.json"))
