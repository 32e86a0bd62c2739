"""The recorder sample handler, which the engine's integration tests rely on, does what it says."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from . import recorder


def kafka_event(*values: bytes | None) -> dict[str, object]:
    records = [
        {
            "topic": "t",
            "partition": 0,
            "offset": i,
            "value": None if v is None else base64.b64encode(v).decode(),
        }
        for i, v in enumerate(values)
    ]
    return {"eventSource": "SelfManagedKafka", "records": {"t-0": records}}


def test_recorder_appends_one_json_line_per_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("ESM_RECORDER_FILE", str(out))
    monkeypatch.delenv("ESM_RECORDER_FAIL_VALUE", raising=False)
    first, second = kafka_event(b"a"), kafka_event(b"b", None)
    recorder.handler(first, None)
    recorder.handler(second, None)
    assert [json.loads(line) for line in out.read_text().splitlines()] == [first, second]


def test_recorder_fails_on_the_configured_value_after_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("ESM_RECORDER_FILE", str(out))
    monkeypatch.setenv("ESM_RECORDER_FAIL_VALUE", "poison")
    recorder.handler(kafka_event(b"fine", None), None)
    with pytest.raises(ValueError, match=r"record t-0@1 has the fail value 'poison'"):
        recorder.handler(kafka_event(b"fine", b"poison"), None)
    assert len(out.read_text().splitlines()) == 2


def test_recorder_fails_on_bytes_that_are_not_text_when_told_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("ESM_RECORDER_FILE", str(out))
    monkeypatch.setenv("ESM_RECORDER_TEXT_ONLY", "1")
    kinesis = {
        "Records": [{"eventID": "shardId-0:1", "kinesis": {"data": base64.b64encode(b"\xff").decode()}}]
    }
    recorder.handler(kafka_event(b"text"), None)
    with pytest.raises(UnicodeDecodeError):
        recorder.handler(kafka_event(b"\xfe"), None)
    with pytest.raises(UnicodeDecodeError):
        recorder.handler(kinesis, None)
    assert len(out.read_text().splitlines()) == 3
