"""Parsing the HANDLER argument: Lambda's `module.function` or `package.module:function`."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidHandlerSpec(ValueError):
    """The HANDLER text is not `module.function` or `package.module:function`."""


@dataclass(frozen=True)
class HandlerSpec:
    """Where a handler lives: import `module`, then follow `attribute` (dots walk attributes)."""

    module: str
    attribute: str
    text: str  # as the user wrote it, for messages


def parse_handler_spec(text: str) -> HandlerSpec:
    """`app.handler` -> (app, handler); `pkg.mod.func` and `pkg.mod:func` -> (pkg.mod, func)."""
    if ":" in text:
        module, _, attribute = text.partition(":")
    else:
        module, _, attribute = text.rpartition(".")
    parts = [*module.split("."), *attribute.split(".")]
    if not module or not attribute or not all(part.isidentifier() for part in parts):
        raise InvalidHandlerSpec(
            f"handler {text!r} is not valid: expected module.function (Lambda's form, e.g. app.handler) "
            "or package.module:function"
        )
    return HandlerSpec(module=module, attribute=attribute, text=text)
