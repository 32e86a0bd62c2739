"""A function error as Lambda reports it: {errorType, errorMessage, stackTrace}."""

from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import orjson

# Frames of the runtime itself are not the user's business (Lambda drops its bootstrap frames too).
_RUNTIME_DIR = str(Path(__file__).resolve().parent)

TIMED_OUT = "Sandbox.Timedout"
EXIT_ERROR = "Runtime.ExitError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"


@dataclass(frozen=True)
class FunctionError:
    error_type: str
    error_message: str
    stack_trace: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"errorType": self.error_type, "errorMessage": self.error_message, "stackTrace": self.stack_trace}
        )

    @classmethod
    def from_json(cls, data: bytes) -> FunctionError:
        body = orjson.loads(data)
        return cls(
            error_type=str(body["errorType"]),
            error_message=str(body["errorMessage"]),
            stack_trace=[str(line) for line in body.get("stackTrace", [])],
        )


def from_exception(exc: BaseException, error_type: str | None = None) -> FunctionError:
    """The "Unhandled" error for `exc`: its class name, str(exc), and the user's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    first_user_frame = next(
        (i for i, frame in enumerate(frames) if not frame.filename.startswith(_RUNTIME_DIR)), len(frames)
    )
    return FunctionError(
        error_type=error_type or type(exc).__name__,
        error_message=str(exc),
        stack_trace=traceback.format_list(frames[first_user_frame:]),
    )


def timed_out(request_id: str, timeout_ms: int) -> FunctionError:
    return FunctionError(
        TIMED_OUT, f"RequestId: {request_id} Error: Task timed out after {timeout_ms / 1000:.2f} seconds"
    )


def exited(request_id: str, returncode: int | None, out_of_memory: bool = False) -> FunctionError:
    """The environment process ended mid-invocation (os._exit, a crash, sys.exit in the handler), or
    was ended for going over its MemorySize: Lambda's Runtime.OutOfMemory, same message."""
    return FunctionError(
        OUT_OF_MEMORY if out_of_memory else EXIT_ERROR,
        f"RequestId: {request_id} Error: Runtime exited with error: {describe_exit(returncode)}",
    )


def describe_exit(returncode: int | None) -> str:
    """Lambda's wording: `exit status 3`, `signal: segmentation fault`."""
    if returncode is None:
        return "unknown exit status"
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        description = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        description = f"signal {-returncode}"
    return f"signal: {description.lower()}"
