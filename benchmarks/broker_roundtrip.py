"""Broker round trip: consume -> publish a follow-up (confirmed, persistent) -> ack, N messages.

``raw_roundtrip_rate`` is the ceiling with plain aio-pika (what the engine benchmark compares
itself to); ``bus_roundtrip_rate`` runs the same loop through engine.bus (decode with the codec,
the ack policy, Bus.publish). Usage: ``.venv/bin/python benchmarks/broker_roundtrip.py [N]``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode

from engine.bus import Bus, Delivery
from engine.messages.envelope import Envelope
from engine.messages.events import PkiReady
from engine.messages.registry import make
from engine.messages.tasks import EnsurePki
from engine.settings import Settings

_PUBLISH_WINDOW = 200  # concurrent confirmed publishes while filling the input queue


async def raw_roundtrip_rate(settings: Settings, n: int) -> float:
    """Messages/s of consume -> confirmed persistent publish -> ack with plain aio-pika."""
    prefix = f"{settings.topology_prefix}.bench-{uuid.uuid4().hex[:8]}"
    args: dict[str, Any] = {"x-queue-type": settings.queue_type.value}
    body = b"x" * 365
    async with await aio_pika.connect(settings.amqp_url.get_secret_value()) as conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=settings.prefetch)
        source = await channel.declare_queue(f"{prefix}.in", durable=True, arguments=args)
        sink = await channel.declare_queue(f"{prefix}.out", durable=True, arguments=args)
        try:
            exchange = channel.default_exchange
            for start in range(0, n, _PUBLISH_WINDOW):
                batch = range(start, min(n, start + _PUBLISH_WINDOW))
                await asyncio.gather(
                    *(
                        exchange.publish(_persistent(body), source.name, mandatory=True)
                        for _ in batch
                    )
                )
            done = asyncio.Event()
            count = 0

            async def on_message(message: AbstractIncomingMessage) -> None:
                nonlocal count
                await exchange.publish(_persistent(message.body), sink.name, mandatory=True)
                await message.ack()
                count += 1
                if count == n:
                    done.set()

            started = time.perf_counter()
            tag = await source.consume(on_message)
            await done.wait()
            elapsed = time.perf_counter() - started
            await source.cancel(tag)
        finally:
            await source.delete(if_unused=False, if_empty=False)
            await sink.delete(if_unused=False, if_empty=False)
    return n / elapsed


async def bus_roundtrip_rate(settings: Settings, n: int) -> float:
    """The same loop through engine.bus: pki.ensure in, pki.ready out to the engine shards."""
    settings = settings.model_copy(
        update={"topology_prefix": f"{settings.topology_prefix}.bench-{uuid.uuid4().hex[:8]}"}
    )
    bus = Bus(settings, name="clusterbus-benchmark")
    await bus.connect()
    await bus.declare()
    try:
        for start in range(0, n, _PUBLISH_WINDOW):
            tasks = [_task(i) for i in range(start, min(n, start + _PUBLISH_WINDOW))]
            await asyncio.gather(*(bus.publish(t, exchange="tasks") for t in tasks))
        done = asyncio.Event()
        count = 0

        async def handler(delivery: Delivery) -> None:
            nonlocal count
            ready = make(PkiReady(cluster_id=delivery.envelope.subject), source="bench")
            await bus.publish(ready, exchange="events")
            count += 1
            if count == n:
                done.set()

        started = time.perf_counter()
        await bus.consume(bus.names.handler("pki"), handler)
        await done.wait()
        elapsed = time.perf_counter() - started
    finally:
        await bus.close()
        await bus.delete_topology()
    return n / elapsed


def _persistent(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(body, delivery_mode=DeliveryMode.PERSISTENT)


def _task(i: int) -> Envelope:
    return make(EnsurePki(cluster_id=f"bench-{i % 500}", cloud="sim"), source="bench")


async def _main(n: int) -> None:
    settings = Settings()
    raw = await raw_roundtrip_rate(settings, n)
    print(f"raw aio-pika  consume -> publish (confirmed) -> ack: {raw:8.0f} msgs/s  (n={n})")
    via_bus = await bus_roundtrip_rate(settings, n)
    print(f"engine.bus    consume -> publish (confirmed) -> ack: {via_bus:8.0f} msgs/s  (n={n})")


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
