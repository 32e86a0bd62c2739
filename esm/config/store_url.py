"""The Store setting: where leases, checkpoints and permits live."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from esm.config.problems import describe

DEFAULT_STORE = "sqlite:///esm-state.db"
_STORE_FORMS = (
    "sqlite:///PATH (sqlite:////abs/path.db for an absolute path) or redis://HOST:PORT/DB[?prefix=NAME]"
)


def check_store_url(url: str) -> None:
    """ValueError naming the expected forms unless `url` is a usable sqlite or redis URL."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return
    if url.startswith(("redis://", "rediss://")):
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or 1 <= parts.port <= 65535
        except ValueError:
            port_ok = False
        database = parts.path.lstrip("/")
        query = parse_qsl(parts.query, keep_blank_values=True)
        # `prefix`: the start of every key, so several deployments can share one Redis.
        query_ok = all(key == "prefix" and value for key, value in query) and len(query) <= 1
        if parts.hostname and port_ok and (database == "" or database.isdigit()) and query_ok:
            return
    raise ValueError(f"expected {_STORE_FORMS}, got {describe(url)}")
