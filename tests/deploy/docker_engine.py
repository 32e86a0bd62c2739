"""A Docker engine for building and running deploy/ (Debian's docker.io and docker-compose, which
scripts/test.sh installs), and the base image its builds start from.

- A daemon that already answers (DOCKER_HOST or the default socket) is used as it is and left
  running. Otherwise the test starts `dockerd` with host networking only (no bridge, no iptables),
  its image store under ~/.cache/esm/docker so base images and build layers are reused by the next
  run, and stops it afterwards. A lock file keeps two runs on one machine from sharing that store
  at once. Where dockerd cannot start, the deploy test is skipped with one line saying why.
- There is no image registry here: the base image is Debian 12 made with `debootstrap
  --variant=minbase` and `docker import`, with the Debian packages the images install already
  in (so their builds skip apt); made once, then found in the image store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "esm"
START_SECONDS = 60.0
STOP_SECONDS = 30.0
PRUNE_SECONDS = 60.0
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What deploy/Dockerfile and deploy/compose/services.Dockerfile install from Debian.
BASE_PACKAGES = ("python3", "python3-venv", "redis-server", "prometheus")
TOOLS = ("dockerd", "docker", "docker-compose", "debootstrap")


class DockerEngine:
    def __init__(self, host: str, started: subprocess.Popen[bytes] | None, run_dir: Path | None) -> None:
        self.host = host
        self._started = started
        self._run_dir = run_dir

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and docker-compose commands against this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    def stop(self) -> None:
        """Stops the dockerd this test started (its containerd with it); leaves any other alone."""
        if self._started is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # the images this run replaced
                self.docker("image", "prune", "--force", check=False, timeout=PRUNE_SECONDS)
            self._started.send_signal(signal.SIGTERM)
            try:
                self._started.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._started.kill()
                self._started.wait()
        if self._run_dir is not None:
            # dockerd leaves its default network namespace mounted under the exec root.
            namespaces = self._run_dir / "exec" / "netns"
            for mounted in namespaces.glob("*") if namespaces.is_dir() else ():
                subprocess.run(["umount", str(mounted)], capture_output=True, timeout=30)
            shutil.rmtree(self._run_dir, ignore_errors=True)


@contextlib.contextmanager
def docker_engine() -> Iterator[DockerEngine]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: scripts/test.sh installs docker.io, docker-compose, debootstrap",
            pytrace=False,
        )
    if _answers(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")):
        yield DockerEngine(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), None, None)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "docker.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine uses the image store
        engine = _start_dockerd()
        try:
            yield engine
        finally:
            engine.stop()


def _answers(host: str) -> bool:
    result = subprocess.run(
        ["docker", "info"], env={**os.environ, "DOCKER_HOST": host}, capture_output=True, timeout=30
    )
    return result.returncode == 0


def _start_dockerd() -> DockerEngine:
    run_dir = Path(tempfile.mkdtemp(prefix="esm-dockerd-"))  # short: the socket path has a limit
    host = f"unix://{run_dir}/docker.sock"
    log_path = run_dir / "dockerd.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [
                "dockerd",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                f"--host={host}",
                f"--data-root={CACHE / 'docker'}",
                f"--exec-root={run_dir / 'exec'}",
                f"--pidfile={run_dir / 'dockerd.pid'}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    engine = DockerEngine(host, process, run_dir)
    started = time.monotonic()
    try:
        while time.monotonic() < started + START_SECONDS and process.poll() is None:
            if _answers(host):
                log.info("deploy: dockerd answers on %s after %.1fs", host, time.monotonic() - started)
                return engine
            time.sleep(0.3)
    except BaseException:
        engine.stop()
        raise
    reason = _last_line(log_path) or f"no answer within {START_SECONDS:.0f}s"
    engine.stop()
    pytest.skip(f"deploy/ not built or run: dockerd cannot start here ({reason})")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


def base_image(engine: DockerEngine) -> str:
    """The tag of the Debian 12 base image, made now if the image store does not have it."""
    key = hashlib.sha256(" ".join(BASE_PACKAGES).encode()).hexdigest()[:10]
    tag = f"esm-ci-base/debian:bookworm-{key}"
    if engine.has_image(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="esm-rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        made = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if made.returncode != 0:
            raise AssertionError(
                f"debootstrap failed ({made.returncode}):\n{(made.stdout + made.stderr)[-3000:]}"
            )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-c", 'CMD ["/bin/bash"]', "-", tag],
            stdin=tar.stdout,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0:
            raise AssertionError(f"docker import failed: {imported.stderr[-2000:]}")
    return tag
