"""Shard leases spread the shards over engine replicas (child processes, real RabbitMQ)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aio_pika
import pytest

from engine.bus import Bus
from engine.settings import Settings
from engine.store import Store
from support.engine import applied_triggers, create_command, wait_engine_ready
from support.processes import ClusterbusProcess, engine_process
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]


async def owners(store: Store) -> Counter[str]:
    """How many shards each replica holds an unexpired lease on."""
    leases = await store.shard_leases()
    return Counter(owner for owner, _ in leases.values() if owner is not None)


async def subscribers_per_shard(bus: Bus) -> list[int]:
    """Consumers registered on each shard queue (SAC counts standbys too)."""
    async with await aio_pika.connect(bus.settings.amqp_url.get_secret_value()) as conn:
        channel = await conn.channel()
        counts = []
        for k in range(bus.settings.shards):
            queue = await channel.declare_queue(bus.names.shard(k), passive=True)
            counts.append(queue.declaration_result.consumer_count or 0)
        return counts


async def publish_clusters(bus: Bus, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        await bus.publish(create_command(name), exchange=None)
    return names


async def wait_applied(store: Store, names: list[str], what: str) -> None:
    async def applied() -> bool:
        return all([await applied_triggers(store, n) == ["cluster.create"] for n in names])

    await eventually(applied, within=30, what=what)


async def test_two_engines_split_the_shards_and_a_survivor_takes_them_all(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    spawn.append(engine_process(settings, tmp_path))
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)

    async def split() -> bool:
        counts = await owners(store)
        return sorted(counts.values()) == [2, 2]

    await eventually(split, within=15, what="each engine owning 2 of 4 shards")

    async def one_subscriber_each() -> bool:
        return await subscribers_per_shard(bus) == [1] * settings.shards

    # Without leases every shard would have two subscribers, one of them a standby.
    await eventually(one_subscriber_each, within=10, what="one subscriber per shard")
    # Enough clusters that every shard gets some (consistent hashing on the name).
    names = await publish_clusters(bus, "spread", 24)
    await wait_applied(store, names, "clusters on every shard applied by two engines")
    both = await owners(store)
    assert len(both) == 2

    spawn[0].kill()

    async def survivor_owns_all() -> bool:
        counts = await owners(store)
        return list(counts.values()) == [settings.shards]

    # ttl (3 intervals) + one interval, with slack for a loaded 2-core machine.
    await eventually(survivor_owns_all, within=10, what="the survivor owning every shard")
    (survivor,) = (await owners(store)).keys()
    assert survivor in both
    names = await publish_clusters(bus, "after-kill", 24)
    await wait_applied(store, names, "clusters on every shard applied by the survivor")


async def test_a_stopped_engine_hands_its_shards_over_at_once(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    slow = settings.model_copy(update={"lease_interval_s": 30.0})
    spawn.append(engine_process(slow, tmp_path))
    await wait_engine_ready(bus)
    assert list((await owners(store)).values()) == [settings.shards]
    spawn[0].stop()  # SIGTERM: leaves the store, so the leases are free long before expiry
    spawn.append(engine_process(slow, tmp_path))

    async def taken_over() -> bool:
        counts = await owners(store)
        return len(counts) == 1 and list(counts.values()) == [settings.shards]

    await eventually(taken_over, within=15, what="the new engine owning every shard")
    names = await publish_clusters(bus, "handover", 8)
    await wait_applied(store, names, "clusters applied after the handover")
