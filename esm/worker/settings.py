"""`esm worker`'s settings: its command line, over the function's entry in a config file (pure,
but for reading that file and checking the bootstrap exists).

    esm worker HANDLER --listen HOST:PORT ...                       a Python handler (esm's runtime)
    esm worker --bootstrap PATH --handler NAME --listen ... --function-name F   any Lambda runtime
    ... --config FILE --function-name F    Timeout, MemorySize, Environment, EphemeralStorage and
                                           ProvisionedConcurrentExecutions of F; flags win
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esm.tls_files import TlsFileError, read_pem
from esm.worker.address import ListenAddress, parse_listen
from esm.worker.handler_spec import parse_handler_spec
from esm.worker.lambda_environment import check_variables

if TYPE_CHECKING:  # the config model is heavy to import; only --config needs it
    from esm.config.function import FunctionConfig

MEMORY_ENFORCEMENT_MODES = ("auto", "cgroup", "rss")


@dataclass(frozen=True)
class WorkerFlags:
    """The command line as given; None means "not given" (so a config file may fill it in)."""

    listen: str
    handler: str | None = None
    bootstrap: str | None = None
    handler_name: str | None = None
    function_name: str | None = None
    concurrency: int | None = None
    config: str | None = None
    timeout: int | None = None
    memory_size: int | None = None
    provisioned_concurrency: int | None = None
    env: tuple[str, ...] = ()
    ephemeral_storage: int | None = None
    metrics_port: int | None = None
    memory_enforcement: str = "auto"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None


@dataclass(frozen=True)
class ServerTls:
    """The worker's TLS: its certificate and key, and the CA a daemon's certificate must be signed
    by (mutual TLS) when given."""

    cert: bytes
    key: bytes = field(repr=False)
    client_ca: bytes | None = None


@dataclass(frozen=True)
class WorkerSettings:
    listen: ListenAddress
    function_name: str
    # The Python handler (`module.function`), or None for a bootstrap.
    python_handler: str | None
    bootstrap: str | None
    # _HANDLER for the environments: the Python handler, or --handler for a bootstrap.
    handler_name: str
    concurrency: int = 1
    timeout_seconds: int | None = None
    memory_mb: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    ephemeral_storage_mb: int = 512
    provisioned: int | None = None
    metrics_port: int | None = None
    memory_enforcement: str = "auto"
    tls: ServerTls | None = None


def resolve(flags: WorkerFlags, function: FunctionConfig | None) -> WorkerSettings:
    """The settings to run with; ValueError naming the flag or field that is wrong."""
    if (flags.handler is None) == (flags.bootstrap is None):
        raise ValueError("give either HANDLER (a Python handler) or --bootstrap PATH (any Lambda runtime)")
    if flags.bootstrap is not None:
        if not flags.handler_name:
            raise ValueError("--bootstrap needs --handler NAME (given to the runtime as _HANDLER)")
        if not flags.function_name:
            raise ValueError("--bootstrap needs --function-name (AWS_LAMBDA_FUNCTION_NAME)")
        _check_executable(flags.bootstrap)
    elif flags.handler_name is not None:
        raise ValueError("--handler goes with --bootstrap; a Python handler is given as HANDLER")
    if flags.handler is not None:
        parse_handler_spec(flags.handler)
    concurrency = flags.concurrency if flags.concurrency is not None else 1
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    if flags.memory_enforcement not in MEMORY_ENFORCEMENT_MODES:
        raise ValueError(f"--memory-enforcement must be one of {', '.join(MEMORY_ENFORCEMENT_MODES)}")
    flag_variables = _parse_env(flags.env)
    variables = {**(function.Environment.Variables if function else {}), **flag_variables}
    provisioned = _first(
        flags.provisioned_concurrency, function.ProvisionedConcurrentExecutions if function else None
    )
    if provisioned is not None and not 0 <= provisioned <= concurrency:
        raise ValueError(
            f"--provisioned-concurrency (or ProvisionedConcurrentExecutions) must be between 0 and "
            f"--concurrency {concurrency}, got {provisioned}"
        )
    memory_mb = _first(flags.memory_size, function.MemorySize if function else None)
    if memory_mb is not None and not 128 <= memory_mb <= 10240:
        raise ValueError(f"--memory-size must be between 128 and 10240 MB, got {memory_mb}")
    timeout = _first(flags.timeout, function.Timeout if function else None)
    if timeout is not None and not 1 <= timeout <= 900:
        raise ValueError(f"--timeout must be between 1 and 900 seconds, got {timeout}")
    storage = _first(flags.ephemeral_storage, function.EphemeralStorage.Size if function else None) or 512
    if not 512 <= storage <= 10240:
        raise ValueError(f"--ephemeral-storage must be between 512 and 10240 MB, got {storage}")
    handler = flags.handler or ""
    return WorkerSettings(
        listen=parse_listen(flags.listen),
        function_name=flags.function_name or handler,
        python_handler=flags.handler,
        bootstrap=str(Path(flags.bootstrap).resolve()) if flags.bootstrap else None,
        handler_name=flags.handler_name or handler,
        concurrency=concurrency,
        timeout_seconds=timeout,
        memory_mb=memory_mb,
        variables=variables,
        ephemeral_storage_mb=storage,
        provisioned=provisioned,
        metrics_port=flags.metrics_port,
        memory_enforcement=flags.memory_enforcement,
        tls=_server_tls(flags),
    )


def _server_tls(flags: WorkerFlags) -> ServerTls | None:
    """TLS from --tls-cert/--tls-key (and --tls-client-ca for mutual TLS); ValueError naming the flag."""
    if flags.tls_cert is None and flags.tls_key is None:
        if flags.tls_client_ca is not None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (the worker's own certificate)")
        return None
    if flags.tls_cert is None or flags.tls_key is None:
        raise ValueError("give both --tls-cert and --tls-key, or neither")
    try:
        return ServerTls(
            cert=read_pem(flags.tls_cert, "--tls-cert", "CERTIFICATE"),
            key=read_pem(flags.tls_key, "--tls-key", "PRIVATE KEY"),
            client_ca=None
            if flags.tls_client_ca is None
            else read_pem(flags.tls_client_ca, "--tls-client-ca", "CERTIFICATE"),
        )
    except TlsFileError as exc:
        raise ValueError(str(exc)) from None


def _first(flag: int | None, configured: int | None) -> int | None:
    return flag if flag is not None else configured


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--env {pair!r} is not NAME=VALUE")
        variables[name] = value
    problems = check_variables(variables)
    if problems:
        raise ValueError("--env: " + "; ".join(problems))
    return variables


def _check_executable(path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--bootstrap {path!r}: no such file")
    if not os.access(file, os.X_OK):
        raise ValueError(f"--bootstrap {path!r}: not executable (chmod +x it, as Lambda requires)")
