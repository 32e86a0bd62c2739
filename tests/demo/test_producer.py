from __future__ import annotations

import pytest

from esm.demo.producer import records_due


@pytest.mark.parametrize(
    ("elapsed", "due"),
    [(-0.1, 0), (0.0, 1), (0.0049, 1), (0.005, 2), (0.5, 101), (0.995, 200), (5.0, 200)],
)
def test_records_follow_the_schedule_and_stop_at_the_total(elapsed: float, due: int) -> None:
    assert records_due(elapsed, rate_per_s=200, total=200) == due
