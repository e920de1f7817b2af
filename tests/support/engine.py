"""Talk to a running engine the way a producer and an observer would."""

from __future__ import annotations

from typing import Any

import aio_pika

from engine.bus import Bus
from engine.messages.envelope import Envelope, envelope_for
from engine.messages.spec import ClusterSpec
from engine.store import Store
from support.waiting import eventually


def create_command(name: str, **spec: Any) -> Envelope:
    body = ClusterSpec(name=name, cloud="clusterbus-sim", **spec).model_dump(mode="json")
    return envelope_for("cluster.create", name, {"spec": body}, source="tests")


async def shard_consumers(bus: Bus) -> int:
    """How many shard queues have a consumer (passive declares, so nothing is created)."""
    async with await aio_pika.connect(bus.settings.amqp_url.get_secret_value()) as conn:
        channel = await conn.channel()
        total = 0
        for k in range(bus.settings.shards):
            queue = await channel.declare_queue(bus.names.shard(k), passive=True)
            total += 1 if queue.declaration_result.consumer_count else 0
        return total


async def wait_engine_ready(bus: Bus, *, within: float = 30.0) -> None:
    async def ready() -> bool:
        return await shard_consumers(bus) == bus.settings.shards

    await eventually(ready, within=within, what="engine consuming every shard")


async def applied_triggers(store: Store, cluster_id: str) -> list[str]:
    """The trigger of each applied message of the cluster, in the order they were applied."""
    seen: dict[str, str] = {}
    for entry in await store.history(cluster_id):
        seen.setdefault(entry.message_id, entry.trigger)
    return list(seen.values())


class TapQueue:
    """A private queue bound to an exchange: what the engine published there."""

    def __init__(self, bus: Bus, exchange: str, pattern: str = "#") -> None:
        self._bus = bus
        self._exchange = exchange
        self._pattern = pattern
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def __aenter__(self) -> TapQueue:
        self._conn = await aio_pika.connect(self._bus.settings.amqp_url.get_secret_value())
        channel = await self._conn.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self._bus.names.exchange(self._exchange), self._pattern)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.messages.append(message)

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()

    def types(self) -> list[str]:
        return [m.type or "" for m in self.messages]
