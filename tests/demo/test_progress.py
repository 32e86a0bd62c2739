from __future__ import annotations

import io

import pytest

from esm.demo.engine_metrics import EngineSnapshot
from esm.demo.progress import ProgressDisplay, ProgressFigures, RateWindow, format_progress


def test_rate_window_covers_the_last_second_only() -> None:
    window = RateWindow(1.0)
    window.add(0.0, 0)
    window.add(0.5, 1000)  # a burst before the window
    window.add(1.5, 1100)
    window.add(2.0, 1200)
    # The rate spans from the last sample at or before the window's start (t=0.5) to now.
    assert window.per_second() == pytest.approx((1200 - 1000) / (2.0 - 0.5))


def test_rate_window_needs_two_samples() -> None:
    window = RateWindow(1.0)
    assert window.per_second() == 0.0
    window.add(3.0, 50)
    assert window.per_second() == 0.0


def test_progress_line_shows_the_engine_figures() -> None:
    engine = EngineSnapshot(
        delivered=12_000,
        offset_lag=35,
        invocations=800,
        errors=2,
        partitions_owned=4,
        invoke_p99_seconds=0.01,
    )
    line = format_progress(ProgressFigures(6.04, 12_050, engine, 1987.4, "producing"))
    assert line == (
        "  6.0s produced 12,050 delivered 12,000 1,987/s lag 35 invocations 800 errors 2 "
        "invoke p99<=10ms [producing]"
    )


def test_progress_line_without_metrics_says_so() -> None:
    line = format_progress(ProgressFigures(1.0, 10, None, 0.0))
    assert "delivered - (metrics not answering)" in line


def test_plain_output_prints_a_line_every_two_seconds() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, is_tty=False)
    for tick in range(10):  # every 0.5 s for 5 s
        display.update(tick * 0.5, f"line {tick}")
    display.update(4.6, "final", force=True)
    assert out.getvalue().splitlines() == ["line 0", "line 4", "line 8", "final"]


def test_terminal_output_rewrites_one_line_and_keeps_it_within_the_width() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, is_tty=True, width=30)
    display.update(0.0, "a" * 50)
    display.update(0.2, "skipped: too soon")
    display.update(0.5, "second")
    display.message("a phase change")
    assert out.getvalue() == "\r" + "a" * 29 + "\x1b[K" + "\rsecond\x1b[K" + "\na phase change\n"
