"""Real certificates for TLS tests, made with the openssl CLI: a CA and certificates it signs
(for 127.0.0.1 and localhost), valid for a day."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# A new P-256 key, unencrypted, for `openssl req`.
_NEW_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    cert: Path
    key: Path
    directory: Path

    def issue(self, name: str) -> Issued:
        """A certificate for `name`, usable by a server (127.0.0.1, localhost) and as a client's."""
        key, csr, cert = (self.directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl(
            "req",
            *_NEW_EC_KEY,
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            f"/CN={name}",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.cert,
            "-CAkey",
            self.key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "1",
            "-extfile",
            extensions,
        )
        return Issued(cert, key)


def make_ca(directory: Path, name: str = "esm-test-ca") -> CertificateAuthority:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req",
        "-x509",
        *_NEW_EC_KEY,
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        f"/CN={name}",
    )
    return CertificateAuthority(cert, key, directory)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)
