"""`ControlApi`: Lambda's own API for event source mappings, served by the daemon (esm.control).

Without it nothing listens. Every request is signed with AWS Signature Version 4 by one of
`AccessKeys`; a key's secret is given inline or, better, named by an environment variable. Secrets
are kept as SecretStr: they never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import os
from typing import Annotated, Self

from pydantic import SecretStr, model_validator

from esm.config.base import ConfigModel
from esm.config.constraints import StrictInt, StrictStr, between, matching
from esm.config.problems import problem


class AccessKey(ConfigModel):
    AccessKeyId: Annotated[StrictStr, matching(r"[A-Za-z0-9]{16,128}", "16 to 128 letters and digits")]
    """The key id clients sign with (`aws_access_key_id`)."""
    SecretAccessKey: SecretStr | None = None
    """The secret, inline (prefer SecretAccessKeyEnv)."""
    SecretAccessKeyEnv: StrictStr | None = None
    """The name of an environment variable holding the secret."""

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.SecretAccessKey is None) == (self.SecretAccessKeyEnv is None):
            raise problem("secret", "give exactly one of SecretAccessKey and SecretAccessKeyEnv")
        return self

    def secret(self) -> str:
        """The secret; KeyError naming the variable when SecretAccessKeyEnv is not set."""
        if self.SecretAccessKey is not None:
            return self.SecretAccessKey.get_secret_value()
        assert self.SecretAccessKeyEnv is not None
        value = os.environ.get(self.SecretAccessKeyEnv)
        if not value:
            raise KeyError(
                f"ControlApi.AccessKeys: the environment variable {self.SecretAccessKeyEnv} "
                f"(the secret of {self.AccessKeyId}) is not set"
            )
        return value


class ControlApiConfig(ConfigModel):
    Host: StrictStr = "127.0.0.1"
    """Address to listen on. Default: 127.0.0.1 (loopback only)."""
    Port: Annotated[StrictInt, between(0, 65535)] = 9109
    """Port to listen on (0: any free port, logged). Default: 9109."""
    Region: StrictStr = "us-east-1"
    """The region requests must be signed for, and that ARNs name. Default: us-east-1."""
    AccessKeys: tuple[AccessKey, ...]
    """The keys allowed to call the API (at least one)."""
    CertFile: StrictStr | None = None
    """PEM certificate chain: serve HTTPS (with KeyFile). Default: plain HTTP."""
    KeyFile: StrictStr | None = None
    """PEM private key of CertFile."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.AccessKeys:
            raise problem("keys", "AccessKeys must name at least one key")
        ids = [key.AccessKeyId for key in self.AccessKeys]
        if len(set(ids)) != len(ids):
            raise problem("keys", "AccessKeys lists an AccessKeyId twice")
        if (self.CertFile is None) != (self.KeyFile is None):
            raise problem("tls", "give both CertFile and KeyFile for HTTPS, or neither")
        return self
