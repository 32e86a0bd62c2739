"""The live progress line: a rate over the last second, the line's text, and how it is shown.

On a terminal the line is rewritten in place (carriage return) about twice a second; anywhere
else (a pipe, a log file, CI) a plain line is printed every couple of seconds instead, so the
output stays readable. Time is passed in by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TextIO

from esm.demo.engine_metrics import EngineSnapshot

TTY_REFRESH_S = 0.5
PLAIN_REFRESH_S = 2.0
_CLEAR_TO_END_OF_LINE = "\x1b[K"


class RateWindow:
    """Per-second rate of a growing counter over roughly the last `window_s` seconds."""

    def __init__(self, window_s: float = 1.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float) -> None:
        self._samples.append((now, value))
        # Keep one sample at or before the window's start, so the rate spans the whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window_s:
            self._samples.popleft()

    def per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else 0.0


@dataclass(frozen=True)
class ProgressFigures:
    elapsed_s: float
    produced: int
    engine: EngineSnapshot | None
    delivered_per_s: float
    phase: str = ""


def format_progress(figures: ProgressFigures) -> str:
    parts = [f"{figures.elapsed_s:5.1f}s", f"produced {figures.produced:,}"]
    engine = figures.engine
    if engine is None:
        parts.append("delivered - (metrics not answering)")
    else:
        parts += [
            f"delivered {engine.delivered:,}",
            f"{figures.delivered_per_s:,.0f}/s",
            f"lag {engine.offset_lag:,}",
            f"invocations {engine.invocations:,}",
            f"errors {engine.errors:,}",
        ]
        if engine.invoke_p99_seconds is not None:
            parts.append(f"invoke p99<={format_seconds(engine.invoke_p99_seconds)}")
    if figures.phase:
        parts.append(f"[{figures.phase}]")
    return " ".join(parts)


def format_seconds(seconds: float) -> str:
    if seconds == float("inf"):
        return "inf"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


class ProgressDisplay:
    """Shows the latest progress line on `stream`, rate-limited by the caller's clock."""

    def __init__(self, stream: TextIO, is_tty: bool, width: int = 80) -> None:
        """`width`: the terminal's columns; a longer line would wrap and defeat the rewrite."""
        self._stream = stream
        self._is_tty = is_tty
        self._width = max(20, width)
        self._interval = TTY_REFRESH_S if is_tty else PLAIN_REFRESH_S
        self._last_shown: float | None = None
        self._line_open = False

    def update(self, now: float, line: str, force: bool = False) -> None:
        """Show `line` if the last one is old enough (or `force`: the final figures)."""
        if not force and self._last_shown is not None and now - self._last_shown < self._interval:
            return
        self._last_shown = now
        if self._is_tty:
            self._stream.write(f"\r{line[: self._width - 1]}{_CLEAR_TO_END_OF_LINE}")
            self._line_open = True
        else:
            self._stream.write(f"{line}\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (a phase change), without losing the progress line on a terminal."""
        self.close_line()
        self._stream.write(f"{text}\n")
        self._stream.flush()

    def close_line(self) -> None:
        """End an in-place line so what follows starts on a fresh one."""
        if self._line_open:
            self._stream.write("\n")
            self._stream.flush()
            self._line_open = False
