from __future__ import annotations

import pytest

from esm.embedded import OutgoingRecord
from esm.kafka_tools.produce import records_from_lines


@pytest.mark.parametrize(
    ("lines", "key", "records"),
    [
        (['{"a": 1}\n', "plain text\n"], None, [OutgoingRecord(b'{"a": 1}'), OutgoingRecord(b"plain text")]),
        (["x\r\n", "\n", "   \n", "y"], "k", [OutgoingRecord(b"x", b"k"), OutgoingRecord(b"y", b"k")]),
        (["é\n"], None, [OutgoingRecord("é".encode())]),
        ([], None, []),
    ],
)
def test_one_record_per_non_blank_line(
    lines: list[str], key: str | None, records: list[OutgoingRecord]
) -> None:
    assert list(records_from_lines(lines, key)) == records
