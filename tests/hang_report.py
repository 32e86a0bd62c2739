"""When a test runs close to pytest-timeout's limit, print the stack of every asyncio task of
every running event loop: pytest-timeout dumps threads, and a hung coroutine shows there only as
the loop's idle `select`."""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading


def running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


def print_tasks(loop: asyncio.AbstractEventLoop, title: str) -> None:
    """Runs on `loop`'s thread: each pending task's stack, to stdout (captured with the test)."""
    out = io.StringIO()
    out.write(f"\n{'~' * 20} {title}: asyncio tasks of {loop!r} {'~' * 20}\n")
    for task in asyncio.all_tasks(loop):
        out.write(f"-- {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(file=out)
    sys.stdout.write(out.getvalue())


class HangReporter:
    """Arms a timer per test; when it fires, every running loop prints its tasks."""

    def __init__(self, after_seconds: float, title: str) -> None:
        self._timer = threading.Timer(after_seconds, self._report)
        self._timer.daemon = True
        self._title = title

    def __enter__(self) -> HangReporter:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _report(self) -> None:
        for loop in running_loops():
            loop.call_soon_threadsafe(print_tasks, loop, self._title)
