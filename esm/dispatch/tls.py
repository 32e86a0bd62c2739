"""The daemon's side of TLS to a function's workers: gRPC channel credentials from `Tls`."""

from __future__ import annotations

import grpc

from esm.config.function import FunctionConfig
from esm.tls_files import read_pem


def channel_credentials(function: FunctionConfig, where: str) -> grpc.ChannelCredentials | None:
    """None without `Tls` (plain gRPC); TlsFileError naming `where`'s field when a file is unusable."""
    tls = function.Tls
    if tls is None:
        return None
    ca = read_pem(tls.CaFile, f"{where}.CaFile", "CERTIFICATE") if tls.CaFile else None
    cert = key = None
    if tls.CertFile is not None and tls.KeyFile is not None:
        cert = read_pem(tls.CertFile, f"{where}.CertFile", "CERTIFICATE")
        key = read_pem(tls.KeyFile, f"{where}.KeyFile", "PRIVATE KEY")
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def check_tls_files(functions: tuple[FunctionConfig, ...]) -> None:
    """Reads every function's TLS files once at start, so a bad one is one clear line."""
    for index, function in enumerate(functions):
        channel_credentials(function, f"Functions[{index}].Tls")
