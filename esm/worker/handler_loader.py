"""Importing the user's handler inside an execution environment, with Lambda's init errors."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from esm.worker import function_error
from esm.worker.function_error import FunctionError
from esm.worker.handler_spec import HandlerSpec

Handler = Callable[[Any, Any], Any]


class HandlerLoadError(Exception):
    """The handler could not be imported; `error` is what Lambda would report for the init."""

    def __init__(self, error: FunctionError) -> None:
        super().__init__(f"{error.error_type}: {error.error_message}")
        self.error = error


def load_handler(spec: HandlerSpec) -> Handler:
    """Import `spec.module` (from sys.path, so the cwd when it is first) and return the callable."""
    try:
        target: object = importlib.import_module(spec.module)
    except SyntaxError as exc:
        raise HandlerLoadError(
            FunctionError(
                function_error.USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{spec.module}': {exc}"
            )
        ) from exc
    except ImportError as exc:
        raise HandlerLoadError(
            FunctionError(
                function_error.IMPORT_MODULE_ERROR, f"Unable to import module '{spec.module}': {exc}"
            )
        ) from exc
    except Exception as exc:  # the module's own top-level code raised: reported as itself, like Lambda
        raise HandlerLoadError(function_error.from_exception(exc)) from exc
    for name in spec.attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError as exc:
            raise HandlerLoadError(
                FunctionError(
                    function_error.HANDLER_NOT_FOUND,
                    f"Handler '{spec.attribute}' missing on module '{spec.module}'",
                )
            ) from exc
    if not callable(target):
        raise HandlerLoadError(
            FunctionError(
                function_error.HANDLER_NOT_FOUND,
                f"Handler '{spec.attribute}' on module '{spec.module}' is not callable "
                f"(it is a {type(target).__name__})",
            )
        )
    return target
