"""Helpers for the bus tests (imported as a top-level module: tests have no packages)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika

from engine.messages.envelope import Envelope
from engine.messages.registry import make
from engine.messages.tasks import EnsurePki
from engine.settings import Settings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def bus_settings(**overrides: Any) -> Settings:
    """Small delays and limits so retries finish in well under a second."""
    values: dict[str, Any] = {
        "topology_prefix": f"test-bus-{uuid.uuid4().hex[:10]}",
        "shards": 4,
        "delay_levels_ms": (100, 300),
        "delivery_limit": 3,
        "max_message_bytes": 2048,
        "prefetch": 16,
    }
    values.update(overrides)
    return Settings(**values)


def pki_task(cluster: str = "demo", **extra: Any) -> Envelope:
    return make(EnsurePki(cluster_id=cluster, cloud="sim", **extra), source="test")


async def wait_for(
    condition: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_async(
    condition: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


async def queue_depth(queue: str) -> int:
    """Ready messages in ``queue`` (passive declare on a throwaway connection)."""
    async with await aio_pika.connect(AMQP_URL) as conn:
        q = await (await conn.channel()).declare_queue(queue, passive=True)
        count = q.declaration_result.message_count
        assert count is not None
        return count


async def drain(
    queue: str, expected: int, within: float = 10.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take ``expected`` messages off ``queue`` with basic.get (acked), waiting for them."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with await aio_pika.connect(AMQP_URL) as conn:
        q = await (await conn.channel()).declare_queue(queue, passive=True)
        deadline = time.monotonic() + within
        while len(got) < expected:
            message = await q.get(no_ack=True, fail=False)
            if message is not None:
                got.append(message)
            elif time.monotonic() > deadline:
                raise AssertionError(f"{queue}: got {len(got)} of {expected} messages")
            else:
                await asyncio.sleep(0.05)
    return got
