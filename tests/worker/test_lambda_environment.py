"""The variables an execution environment gets, and the checks on a function's own."""

from __future__ import annotations

import re

import pytest

from esm.worker.lambda_environment import FunctionEnvironment, check_variables, log_stream_name

FUNCTION = FunctionEnvironment(
    function_name="orders",
    handler="index.handler",
    task_root="/srv/fn",
    region="eu-west-1",
    memory_mb=512,
    variables={"STAGE": "prod", "TZ": "Europe/Paris"},
)


def test_reserved_variables_then_the_functions_own_over_the_inherited() -> None:
    inherited = {
        "PATH": "/bin",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_RUNTIME_API": "stale:1",
        "STAGE": "dev",
    }
    variables = FUNCTION.variables_for(
        inherited,
        initialization_type="on-demand",
        log_stream_name="2024/03/01/[$LATEST]ab",
        tmpdir="/tmp/e1",
        runtime_api="127.0.0.1:9001",
    )
    assert variables == {
        "PATH": "/bin",
        "_HANDLER": "index.handler",
        "LAMBDA_TASK_ROOT": "/srv/fn",
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/03/01/[$LATEST]ab",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "TZ": "Europe/Paris",  # a function may set its time zone, as on Lambda
        "TMPDIR": "/tmp/e1",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "STAGE": "prod",
    }
    assert all(value for value in variables.values())


def test_no_runtime_api_variable_for_esms_own_python_runtime() -> None:
    variables = FUNCTION.variables_for(
        {"AWS_LAMBDA_RUNTIME_API": "stale:1"},
        initialization_type="provisioned-concurrency",
        log_stream_name="s",
        tmpdir="/t",
    )
    assert "AWS_LAMBDA_RUNTIME_API" not in variables
    assert variables["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"


@pytest.mark.parametrize(
    ("variables", "problems"),
    [
        ({"STAGE": "x", "DB_HOST": "h"}, []),
        ({"AWS_LAMBDA_FUNCTION_NAME": "x"}, ["AWS_LAMBDA_FUNCTION_NAME: is one of Lambda's reserved"]),
        ({"AWS_SECRET_ACCESS_KEY": "x"}, ["AWS_SECRET_ACCESS_KEY: is one of Lambda's reserved"]),
        ({"9LIVES": "x"}, ["'9LIVES': a name must be a letter"]),
        ({"A": "x"}, ["'A': a name must be a letter"]),
        ({"BIG": "x" * 4096}, ["the variables take 4099 bytes; Lambda allows 4096"]),
    ],
)
def test_checks(variables: dict[str, str], problems: list[str]) -> None:
    found = check_variables(variables)
    assert len(found) == len(problems)
    for problem, expected in zip(found, problems, strict=True):
        assert problem.startswith(expected)


def test_log_stream_names_have_lambdas_form() -> None:
    assert re.fullmatch(r"2024/03/01/\[\$LATEST\][0-9a-f]{32}", log_stream_name(1709251200.0))
