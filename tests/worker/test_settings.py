"""`esm worker`'s settings: flags over the function's config entry, and every refusal named."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from esm.config import parse_config
from esm.config.function import FunctionConfig
from esm.worker.settings import WorkerFlags, resolve


def configured(**fields: Any) -> FunctionConfig:
    entry = {"FunctionName": "orders", "Endpoints": ["127.0.0.1:1"], **fields}
    return parse_config({"Functions": [entry]}).config.Functions[0]


@pytest.fixture
def bootstrap(tmp_path: Path) -> str:
    path = tmp_path / "bootstrap"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def flags(**given: Any) -> WorkerFlags:
    return WorkerFlags(listen="127.0.0.1:0", **given)


def test_a_python_handler_alone_keeps_todays_defaults() -> None:
    settings = resolve(flags(handler="app.handler"), None)
    assert (settings.python_handler, settings.bootstrap, settings.handler_name) == (
        "app.handler",
        None,
        "app.handler",
    )
    assert (settings.function_name, settings.concurrency, settings.provisioned) == ("app.handler", 1, None)
    assert (settings.memory_mb, settings.timeout_seconds, settings.variables) == (None, None, {})


def test_a_bootstrap_with_its_handler_name(bootstrap: str) -> None:
    settings = resolve(flags(bootstrap=bootstrap, handler_name="index.handler", function_name="orders"), None)
    assert settings.bootstrap == str(Path(bootstrap).resolve())
    assert (settings.python_handler, settings.handler_name, settings.function_name) == (
        None,
        "index.handler",
        "orders",
    )


def test_the_config_fills_in_and_flags_win() -> None:
    function = configured(
        Timeout=30,
        MemorySize=1024,
        Environment={"Variables": {"STAGE": "config", "COLOR": "blue"}},
        EphemeralStorage={"Size": 2048},
        ProvisionedConcurrentExecutions=2,
    )
    settings = resolve(
        flags(
            handler="app.handler", function_name="orders", concurrency=4, memory_size=256, env=("STAGE=flag",)
        ),
        function,
    )
    assert (settings.timeout_seconds, settings.memory_mb, settings.provisioned) == (30, 256, 2)
    assert settings.variables == {"STAGE": "flag", "COLOR": "blue"}
    assert settings.ephemeral_storage_mb == 2048


def test_a_config_entry_brings_lambdas_default_memory_size() -> None:
    assert resolve(flags(handler="app.handler"), configured()).memory_mb == 128


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "give either HANDLER"),
        ({"handler": "app.handler", "bootstrap": "/bin/sh"}, "give either HANDLER"),
        ({"handler": "app.handler", "handler_name": "x.y"}, "--handler goes with --bootstrap"),
        ({"bootstrap": "BOOT", "function_name": "f"}, "--bootstrap needs --handler"),
        ({"bootstrap": "BOOT", "handler_name": "x.y"}, "--bootstrap needs --function-name"),
        ({"bootstrap": "/no/such/file", "handler_name": "x.y", "function_name": "f"}, "no such file"),
        ({"bootstrap": "NOT_EXECUTABLE", "handler_name": "x.y", "function_name": "f"}, "not executable"),
        ({"handler": "nodots"}, "handler 'nodots' is not valid"),
        ({"handler": "app.handler", "concurrency": 0}, "--concurrency must be at least 1, got 0"),
        ({"handler": "app.handler", "provisioned_concurrency": 2}, "between 0 and --concurrency 1, got 2"),
        (
            {"handler": "app.handler", "memory_size": 64},
            "--memory-size must be between 128 and 10240 MB, got 64",
        ),
        ({"handler": "app.handler", "timeout": 901}, "--timeout must be between 1 and 900 seconds, got 901"),
        ({"handler": "app.handler", "ephemeral_storage": 100}, "between 512 and 10240 MB, got 100"),
        ({"handler": "app.handler", "env": ("NOEQUALS",)}, "--env 'NOEQUALS' is not NAME=VALUE"),
        ({"handler": "app.handler", "env": ("_HANDLER=x",)}, "_HANDLER: is one of Lambda's reserved"),
        ({"handler": "app.handler", "memory_enforcement": "ulimit"}, "--memory-enforcement must be one of"),
        ({"handler": "app.handler", "listen": "nope"}, "is not HOST:PORT"),
    ],
)
def test_refusals_name_the_flag(given: dict[str, Any], message: str, bootstrap: str, tmp_path: Path) -> None:
    not_executable = tmp_path / "plain"
    not_executable.write_text("")
    replacements = {"BOOT": bootstrap, "NOT_EXECUTABLE": str(not_executable)}
    if given.get("bootstrap") in replacements:
        given = {**given, "bootstrap": replacements[given["bootstrap"]]}
    listen = given.pop("listen", "127.0.0.1:0")
    with pytest.raises(ValueError, match=message):
        resolve(WorkerFlags(listen=listen, **given), None)
    assert os.path.exists(bootstrap)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"tls_cert": "{pem}"}, "give both --tls-cert and --tls-key, or neither"),
        ({"tls_client_ca": "{pem}"}, "--tls-client-ca needs --tls-cert and --tls-key"),
        ({"tls_cert": "{missing}", "tls_key": "{key}"}, "--tls-cert '{missing}': cannot read it"),
        ({"tls_cert": "{key}", "tls_key": "{key}"}, "--tls-cert '{key}': expected a PEM certificate"),
        ({"tls_cert": "{pem}", "tls_key": "{pem}"}, "--tls-key '{pem}': expected a PEM private key"),
    ],
)
def test_tls_flags_are_checked_and_name_the_flag(given: dict[str, str], message: str, tmp_path: Path) -> None:
    paths = {"pem": tmp_path / "cert.pem", "key": tmp_path / "key.pem", "missing": tmp_path / "nope.pem"}
    paths["pem"].write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    paths["key"].write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5\n-----END PRIVATE KEY-----\n")
    flags = {name: value.format(**paths) for name, value in given.items()}
    with pytest.raises(ValueError) as refused:
        resolve(WorkerFlags(listen="127.0.0.1:0", handler="noop.handler", **flags), None)
    assert str(refused.value).startswith(message.format(**paths))
    assert "c2VjcmV0LWtleS1ib2R5" not in str(refused.value)  # never a key's content


def test_tls_flags_make_server_credentials(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n")
    flags = WorkerFlags(
        listen="127.0.0.1:0",
        handler="noop.handler",
        tls_cert=str(cert),
        tls_key=str(key),
        tls_client_ca=str(cert),
    )
    tls = resolve(flags, None).tls
    assert tls is not None and tls.client_ca == cert.read_bytes() and tls.key == key.read_bytes()
    assert "c2VjcmV0" not in repr(tls)
