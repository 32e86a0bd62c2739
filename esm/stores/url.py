"""Parsing of store URLs into a backend and its location (pure: no I/O).

sqlite:///relative/path.db     a file relative to the working directory
sqlite:////absolute/path.db    an absolute path
redis://[:password@]host:port/db[?prefix=NAME]   keys start with NAME: (default "esm:")
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from esm.stores.errors import StoreConfigError

DEFAULT_STORE_URL = "sqlite:///esm-state.db"
DEFAULT_REDIS_PREFIX = "esm:"
_SUPPORTED = "use sqlite:///path or redis://host:port/db"


@dataclass(frozen=True)
class SqliteLocation:
    path: str


@dataclass(frozen=True)
class RedisLocation:
    # The URL handed to the Redis client: the original one without esm's own `prefix` parameter.
    client_url: str
    prefix: str
    # For messages and logs: the URL without its password.
    display_url: str


StoreLocation = SqliteLocation | RedisLocation


def parse_store_url(url: str) -> StoreLocation:
    """Return where the store lives; raise StoreConfigError saying what is wrong with `url`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        return _parse_sqlite(url)
    if scheme in ("redis", "rediss"):
        return _parse_redis(url)
    if not scheme:
        raise StoreConfigError(f"Store: URL {url!r} has no scheme ({_SUPPORTED})")
    raise StoreConfigError(f"Store: unsupported URL scheme {scheme!r} ({_SUPPORTED})")


def _parse_sqlite(url: str) -> SqliteLocation:
    parts = urlsplit(url)
    if parts.netloc:
        raise StoreConfigError(
            f"Store: SQLite URL {url!r} names a host {parts.netloc!r}; SQLite is a local file "
            "(sqlite:///relative.db or sqlite:////absolute/path.db)"
        )
    if parts.query or parts.fragment:
        raise StoreConfigError(f"Store: SQLite URL {url!r} takes no query or fragment")
    # urlsplit keeps the slash that separates the empty host from the path: drop exactly that one.
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path.endswith("/"):
        raise StoreConfigError(f"Store: SQLite URL {url!r} has no file name (sqlite:///esm-state.db)")
    return SqliteLocation(path=path)


def _parse_redis(url: str) -> RedisLocation:
    parts = urlsplit(url)
    display_url = _without_password(url)
    if not _has_valid_port(url):
        raise StoreConfigError(f"Store: Redis URL {display_url!r} has a bad port (1-65535)")
    if not parts.hostname:
        raise StoreConfigError(f"Store: Redis URL {display_url!r} has no host (redis://host:port/db)")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise StoreConfigError(
            f"Store: Redis URL {display_url!r} has database {db!r}; it must be a number (redis://host:port/0)"
        )
    params = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in params if key == "prefix"]
    if len(prefixes) > 1:
        raise StoreConfigError(f"Store: Redis URL {display_url!r} gives `prefix` more than once")
    prefix = DEFAULT_REDIS_PREFIX
    if prefixes:
        if not prefixes[0]:
            raise StoreConfigError(f"Store: Redis URL {display_url!r} has an empty `prefix`")
        # Keys read `NAME:permits:...` whether or not the user wrote the separator.
        prefix = prefixes[0] if prefixes[0].endswith(":") else prefixes[0] + ":"
    client_query = urlencode([(key, value) for key, value in params if key != "prefix"])
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, client_query, ""))
    return RedisLocation(client_url=client_url, prefix=prefix, display_url=display_url)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if _has_valid_port(url) and parts.port else ""
    netloc = f"{parts.username or ''}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _has_valid_port(url: str) -> bool:
    """True when the URL has no port (the client's default) or a number in range."""
    try:
        urlsplit(url).port  # noqa: B018 - the property validates
    except ValueError:
        return False
    return True
