from __future__ import annotations

import pytest
from pydantic import ValidationError

from esm.config.mapping_parts import Filter, to_utc_datetime


@pytest.mark.parametrize("pattern", ['{"value": {"kind": ["order"]}}', {"value": {"kind": ["order"]}}])
def test_filter_pattern_as_json_text_or_mapping_is_held_parsed(pattern: object) -> None:
    assert Filter.model_validate({"Pattern": pattern}).Pattern == {"value": {"kind": ["order"]}}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{not json", "expected a JSON object, got invalid JSON"),
        ("[1]", "expected a JSON object or a mapping"),
    ],
)
def test_bad_filter_pattern(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Filter.model_validate({"Pattern": pattern})


def test_timestamp_conversion_passes_none() -> None:
    assert to_utc_datetime(None) is None
