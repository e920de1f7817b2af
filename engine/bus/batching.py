"""Group deliveries: up to ``max_batch``, or what arrived within ``max_wait`` of the first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def collect(inbox: asyncio.Queue[T], max_batch: int, max_wait_s: float) -> list[T]:
    """Wait for one item, then take more until the batch is full or the window closes."""
    loop = asyncio.get_running_loop()
    batch = [await inbox.get()]
    deadline = loop.time() + max_wait_s
    while len(batch) < max_batch:
        if not inbox.empty():
            batch.append(inbox.get_nowait())
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(inbox.get(), remaining))
        except TimeoutError:
            break
    return batch


async def run_batches(
    inbox: asyncio.Queue[T],
    process: Callable[[list[T]], Awaitable[None]],
    max_batch: int,
    max_wait_s: float,
) -> None:
    """Forever: collect a batch, process it (in order, one batch at a time)."""
    while True:
        await process(await collect(inbox, max_batch, max_wait_s))
