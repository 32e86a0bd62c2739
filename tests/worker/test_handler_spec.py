from __future__ import annotations

import pytest

from esm.worker.handler_spec import HandlerSpec, InvalidHandlerSpec, parse_handler_spec


@pytest.mark.parametrize(
    ("text", "module", "attribute"),
    [
        ("app.handler", "app", "handler"),
        ("pkg.mod.func", "pkg.mod", "func"),
        ("pkg.mod:func", "pkg.mod", "func"),
        ("app:Handlers.on_batch", "app", "Handlers.on_batch"),
    ],
)
def test_parses_lambda_and_colon_forms(text: str, module: str, attribute: str) -> None:
    assert parse_handler_spec(text) == HandlerSpec(module=module, attribute=attribute, text=text)


@pytest.mark.parametrize(
    "text", ["handler", "", ".handler", "app.", "app:", ":handler", "app.my-handler", "a b.c"]
)
def test_rejects_text_that_names_no_module_and_function(text: str) -> None:
    with pytest.raises(InvalidHandlerSpec, match=r"module\.function"):
        parse_handler_spec(text)
