"""benchmarks/kafka_bench/environment.py: the machine and load a benchmark records."""

from __future__ import annotations

import pytest
from kafka_bench.environment import cpu_model, finished, started


@pytest.mark.parametrize(
    ("cpuinfo", "model"),
    [
        (
            "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n",
            "AMD EPYC 7B13",
        ),
        ("processor\t: 0\nmodel name\t:\n", "unknown CPU"),
        ("", "unknown CPU"),
    ],
)
def test_cpu_model(cpuinfo: str, model: str) -> None:
    assert cpu_model(cpuinfo) == model


def test_started_and_finished_record_the_load_at_both_ends() -> None:
    env = finished(started())
    assert env["machine"].split("-core ")[0].isdigit()
    assert len(env["load_average_start"]) == len(env["load_average_end"]) == 3
    assert env["started_utc"].endswith("Z")
