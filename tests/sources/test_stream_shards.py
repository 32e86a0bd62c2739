"""What the stream readers share: how a read is labelled for esm_shard_reads_total."""

from __future__ import annotations

import pytest

from esm.sources.stream_shards import READ_RESULTS, ReadResult, read_result


@pytest.mark.parametrize(
    ("result", "label"),
    [
        (ReadResult(records=[{"x": 1}]), "records"),
        (ReadResult(records=[], next_poll_delay_seconds=0.25), "empty"),
        (ReadResult(records=[], shard_ended=True), "empty"),
        (ReadResult(records=[], throttled=True, next_poll_delay_seconds=0.5), "throttled"),
    ],
)
def test_each_read_gets_one_of_the_labels(result: ReadResult, label: str) -> None:
    assert read_result(result) == label
    assert label in READ_RESULTS
