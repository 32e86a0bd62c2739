"""A function's `Tls`: how the daemon reaches its workers over TLS (mutual TLS with a certificate)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from esm.config.base import ConfigModel
from esm.config.constraints import StrictStr
from esm.config.problems import problem


class TlsConfig(ConfigModel):
    CaFile: StrictStr | None = None
    """PEM CA certificate(s) the workers' server certificates are checked against. Default: the
    system's trusted roots."""
    CertFile: StrictStr | None = None
    """PEM certificate chain the daemon presents to workers (mutual TLS; with KeyFile)."""
    KeyFile: StrictStr | None = None
    """PEM private key of CertFile. Read at start; never logged."""

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.CertFile is None) != (self.KeyFile is None):
            raise problem("tls", "give both CertFile and KeyFile (a client certificate), or neither")
        return self
