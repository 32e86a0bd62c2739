"""A child process that opens one fresh store file per round at the same moment as its peers
(run with the multiprocessing spawn method), and reports every open that failed."""

from __future__ import annotations

import asyncio
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from esm.stores import StoreError, open_store


def open_each_at_once(files: list[Path], start: Barrier, failures: Queue[str]) -> None:
    for path in files:
        start.wait(timeout=60)  # every process opens this round's file together
        try:
            store = open_store(f"sqlite:///{path}")
        except StoreError as error:
            failures.put(f"{path.name}: {error}")
            continue
        asyncio.run(store.close())
