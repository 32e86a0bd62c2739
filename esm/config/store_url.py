"""The Store setting: where leases, checkpoints and permits live."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from esm.config.problems import describe

DEFAULT_STORE = "sqlite:///esm-state.db"
_STORE_FORMS = (
    "sqlite:///PATH (sqlite:////abs/path.db for an absolute path) or redis://HOST:PORT/DB[?prefix=NAME] "
    "(rediss:// for TLS, with ssl_* parameters)"
)
# The Redis client's TLS settings, allowed in a rediss:// URL (passed to redis-py as they are).
REDIS_TLS_PARAMETERS = frozenset(
    ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
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
        tls = parts.scheme == "rediss"
        query_ok = (
            all(value and (key == "prefix" or (tls and key in REDIS_TLS_PARAMETERS)) for key, value in query)
            and len([key for key, _ in query if key == "prefix"]) <= 1
        )
        if parts.hostname and port_ok and (database == "" or database.isdigit()) and query_ok:
            return
    raise ValueError(f"expected {_STORE_FORMS}, got {describe(_masked(url))}")


def _masked(url: str) -> str:
    """The URL with any password replaced (an error must not show it)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    user_info, _, host = netloc.rpartition("@")
    user = user_info.partition(":")[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"
