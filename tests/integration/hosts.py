"""Several hosts on one machine: network namespaces joined to the root namespace by veth pairs.

The root namespace holds the shared services (the broker, Redis, kinesis-mock) on
`SERVICE_ADDRESS`, an address of its own on a veth pair that stays in the root namespace, so no
service listens on the machine's real interfaces. Each host is a namespace with its own loopback
(its worker listens there), an address 10.77.N.2 and a default route to the root namespace;
`unshare --uts` gives each process started in it the host's name, so the daemons tell each
other apart as real hosts do (socket.gethostname()). A network cut drops the host's traffic with
iptables inside its namespace: TCP connections stay open and what was sent during the cut
arrives after the heal, as on a real network.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esm_processes import EsmProcess

SERVICE_ADDRESS = "10.77.0.1"


class NetnsUnavailable(Exception):
    """Network namespaces cannot be created here (not root, no CAP_NET_ADMIN, no veth)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    device: str  # its end of the veth pair, inside the namespace
    address: str

    def prefix(self) -> list[str]:
        """A command line prefix that runs a program on this host, under its host name."""
        return [
            "ip", "netns", "exec", self.namespace,
            "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
        ]  # fmt: skip


class HostNetwork:
    """`names` hosts in namespaces; everything is removed by `close()` (also after a failure)."""

    def __init__(self, names: list[str]) -> None:
        tag = f"e{os.getpid() % 100000}"
        self._tag = tag
        self._service_pair = (f"{tag}s0", f"{tag}s1")
        self.hosts = {
            name: Host(name, f"{tag}-{name}", f"{tag}h{i}n", f"10.77.{i + 1}.2")
            for i, name in enumerate(names)
        }
        self._namespaces: list[str] = []
        self._links: list[str] = []
        self._cut: set[str] = set()

    def __enter__(self) -> HostNetwork:
        try:
            self._create()
        except (subprocess.CalledProcessError, FileNotFoundError) as err:
            self.close()
            detail = err.stderr.strip() if isinstance(err, subprocess.CalledProcessError) else str(err)
            raise NetnsUnavailable(f"cannot create network namespaces here: {detail}") from err
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        outside, peer = self._service_pair
        _ip("link", "add", outside, "type", "veth", "peer", "name", peer)
        self._links.append(outside)
        _ip("addr", "add", f"{SERVICE_ADDRESS}/32", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("link", "set", peer, "up")
        for i, host in enumerate(self.hosts.values()):
            root_end = f"{self._tag}h{i}r"
            _ip("netns", "add", host.namespace)
            self._namespaces.append(host.namespace)
            _ip("link", "add", root_end, "type", "veth", "peer", "name", host.device)
            self._links.append(root_end)
            _ip("link", "set", host.device, "netns", host.namespace)
            _ip("addr", "add", f"10.77.{i + 1}.1/24", "dev", root_end)
            _ip("link", "set", root_end, "up")
            inside = ["netns", "exec", host.namespace, "ip"]
            _ip(*inside, "addr", "add", f"{host.address}/24", "dev", host.device)
            _ip(*inside, "link", "set", host.device, "up")
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "route", "add", "default", "via", f"10.77.{i + 1}.1")

    def cut(self, name: str) -> None:
        """Drops every packet to and from the host (its loopback keeps working)."""
        self._iptables(name, "-I")
        self._cut.add(name)

    def heal(self, name: str) -> None:
        """Ends a cut (nothing if the host is not cut off)."""
        if name in self._cut:
            self._iptables(name, "-D")
            self._cut.discard(name)

    def _iptables(self, name: str, action: str) -> None:
        host = self.hosts[name]
        for rule in (["INPUT", "-i", host.device], ["OUTPUT", "-o", host.device]):
            subprocess.run(
                ["ip", "netns", "exec", host.namespace, "iptables", action, *rule, "-j", "DROP"],
                check=True,
                capture_output=True,
                timeout=10,
            )

    def close(self) -> None:
        for namespace in self._namespaces:  # deleting a namespace deletes its veth pairs
            _ip("netns", "delete", namespace, check=False)
        for link in self._links:
            _ip("link", "delete", link, check=False)
        self._namespaces.clear()
        self._links.clear()


class RedisServer:
    """A redis-server of the test's own on SERVICE_ADDRESS (the machine's Redis stays untouched):
    no persistence, and `--protected-mode no` so the hosts' addresses may connect."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            ["redis-server", "--bind", SERVICE_ADDRESS, "--port", str(port), "--protected-mode", "no",
             "--save", "", "--appendonly", "no"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-h", SERVICE_ADDRESS, "-p", str(port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def url(self, prefix: str) -> str:
        return f"redis://{SERVICE_ADDRESS}:{self.port}/0?prefix={prefix}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


@dataclass
class Invocation:
    host: str
    start: float
    end: float
    records: list[tuple[Any, Any, str]]


def invocations(directory: Path) -> list[Invocation]:
    """Every invocation any host's recorder wrote (complete lines only), by start time."""
    found = []
    for path in directory.glob("invocations-*.jsonl"):
        for line in path.read_text().split("\n")[:-1]:
            entry = json.loads(line)
            records = [(r[0], r[1], r[2]) for r in entry["records"]]
            found.append(Invocation(entry["host"], entry["start"], entry["end"], records))
    return sorted(found, key=lambda invocation: invocation.start)


def peak_overlap(found: list[Invocation]) -> int:
    """The most invocations running at once, over every host (one machine, one clock)."""
    edges = sorted([(i.start, 1) for i in found] + [(i.end, -1) for i in found])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> float:
    """Waits until `condition` holds; returns when (time.time())."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(interval)
    return time.time()


# Where each host's worker listens, on the host's own loopback.
WORKER_ADDRESS = "127.0.0.1:9400"


@dataclass
class HostProcesses:
    """One host's worker and daemon."""

    worker: EsmProcess
    daemon: EsmProcess

    def kill(self) -> None:
        """kill -9 of the whole host: nothing is released or committed."""
        self.daemon.kill()
        self.worker.kill()

    def stop(self) -> int:
        code = self.daemon.stop()
        self.worker.stop()
        return code


def start_host(
    host: Host, directory: Path, config: dict[str, Any], env: dict[str, str] | None = None, sleep: float = 0.2
) -> HostProcesses:
    """Starts the host's worker (the recorder handler) and then its daemon with `config`."""
    worker = EsmProcess(
        ["worker", "tests.handlers.host_recorder:handler", "--listen", WORKER_ADDRESS, "--concurrency", "4",
         "--function-name", "fn"],
        env={
            "ESM_HOST_RECORDER_FILE": str(directory / f"invocations-{host.name}.jsonl"),
            "ESM_HOST_RECORDER_SLEEP": str(sleep),
        },
        prefix=host.prefix(),
    )  # fmt: skip
    worker.wait_for_line(r"esm worker: serving")
    path = directory / f"config-{host.name}.json"
    path.write_text(json.dumps(config))
    return HostProcesses(worker, EsmProcess(["run", "-c", str(path)], env=env, prefix=host.prefix()))
