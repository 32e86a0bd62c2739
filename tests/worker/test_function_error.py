from __future__ import annotations

import signal

from esm.worker.function_error import FunctionError, describe_exit, exited, from_exception, timed_out


def test_timeout_message_is_lambdas() -> None:
    error = timed_out("abc-123", 3000)
    assert error.error_type == "Sandbox.Timedout"
    assert error.error_message == "RequestId: abc-123 Error: Task timed out after 3.00 seconds"


def test_exit_descriptions_name_the_status_or_the_signal() -> None:
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-signal.SIGSEGV) == "signal: segmentation fault"
    assert describe_exit(-signal.SIGKILL) == "signal: killed"
    assert exited("r", 1).error_message == "RequestId: r Error: Runtime exited with error: exit status 1"


def test_exception_becomes_type_message_and_frames() -> None:
    def inner() -> None:
        raise KeyError("order_id")

    try:
        inner()
    except KeyError as exc:
        error = from_exception(exc)
    assert error.error_type == "KeyError"
    assert error.error_message == "'order_id'"
    assert "in inner" in error.stack_trace[-1]
    assert 'raise KeyError("order_id")' in error.stack_trace[-1]


def test_json_round_trip_uses_lambdas_field_names() -> None:
    error = FunctionError("ValueError", "bad", ["  File x\n"])
    assert error.to_json() == b'{"errorType":"ValueError","errorMessage":"bad","stackTrace":["  File x\\n"]}'
    assert FunctionError.from_json(error.to_json()) == error
