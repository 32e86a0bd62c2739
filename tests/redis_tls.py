"""A real redis-server speaking only TLS (and requiring a password), on a free loopback port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from tls_certs import make_ca

from esm.netutil import free_port


@dataclass(frozen=True)
class TlsRedis:
    port: int
    password: str
    ca_file: Path

    def url(self, query: str = "", password: str | None = None) -> str:
        """A rediss:// URL for database 0 that checks the server against the test CA."""
        secret = self.password if password is None else password
        extra = f"&{query}" if query else ""
        return f"rediss://:{secret}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}{extra}"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, ssl=True, ssl_ca_certs=str(self.ca_file)
        )


@contextmanager
def tls_redis(directory: Path, password: str) -> Iterator[TlsRedis]:
    ca = make_ca(directory / "ca")
    server = ca.issue("redis")
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(server.cert),
            "--tls-key-file",
            str(server.key),
            "--tls-ca-cert-file",
            str(ca.cert),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = TlsRedis(port, password, ca.cert)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with running.client() as client:
                    client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
