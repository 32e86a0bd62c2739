"""Reading PEM files for TLS between the daemon and its workers; errors name the setting, never
a file's content (a private key must not reach a log line)."""

from __future__ import annotations

from pathlib import Path


class TlsFileError(Exception):
    """A certificate or key file cannot be used; the message names the setting and the path."""


def read_pem(path: str, setting: str, kind: str) -> bytes:
    """The file's bytes; TlsFileError when it cannot be read or holds no PEM `kind` block
    (CERTIFICATE, PRIVATE KEY)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(
            f"{setting} {path!r}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    marker = b"-----BEGIN CERTIFICATE-----" if kind == "CERTIFICATE" else b"PRIVATE KEY-----"
    if marker not in data:
        what = "a PEM certificate" if kind == "CERTIFICATE" else "a PEM private key"
        raise TlsFileError(f"{setting} {path!r}: expected {what}, found none")
    return data
