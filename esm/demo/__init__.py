"""`esm demo`: the whole pipeline end to end on the bundled broker, with no services to install.

`run_demo` imports the runner only when called: `esm.demo.handler` (the demo's function) is
imported by every execution environment of the worker, which must not load Kafka clients.
"""

from __future__ import annotations


def run_demo(seconds: float, rate: int, partitions: int, keep_old: bool = False) -> int:
    """Run the demo (see `esm.demo.runner`); returns the exit status."""
    from esm.demo.runner import run_demo as run

    return run(seconds=seconds, rate=rate, partitions=partitions, keep_old=keep_old)


__all__ = ["run_demo"]
