"""Topology declaration and routing: shards, handler queues, unroutable publishes."""

from __future__ import annotations

import dataclasses

import pytest
from bushelpers import bus_settings, pki_task, queue_depth, wait_async

from engine.bus import Bus, PluginMissing, Unroutable, build_topology
from engine.bus.publisher import delay_level
from engine.bus.topology import CONSISTENT_HASH
from engine.messages.envelope import Envelope, envelope_for
from engine.settings import QueueType, Settings


def test_topology_table_names_everything_from_the_prefix() -> None:
    topology = build_topology(bus_settings(topology_prefix="p", shards=3))
    queues = {q.name for q in topology.queues}
    assert {"p.engine.shard.0", "p.engine.shard.2", "p.dead-letter", "p.handlers.compute"} <= queues
    assert "p.delay.tasks.100" in queues and "p.delay.events.300" in queues
    assert all(name.startswith("p.") for name in queues)
    shard = next(q for q in topology.queues if q.name == "p.engine.shard.0")
    assert shard.arguments["x-single-active-consumer"] is True
    assert shard.arguments["x-dead-letter-exchange"] == "p.dlx"
    assert "x-delivery-limit" not in shard.arguments


def test_quorum_queues_get_a_delivery_limit() -> None:
    topology = build_topology(bus_settings(queue_type=QueueType.QUORUM, delivery_limit=7))
    work = [q for q in topology.queues if ".handlers." in q.name or ".shard." in q.name]
    assert work and all(q.arguments["x-delivery-limit"] == 7 for q in work)
    assert all(q.arguments["x-queue-type"] == "quorum" for q in work)


def test_delay_level_picks_the_smallest_level_at_least_the_delay() -> None:
    levels = (100, 300, 1000)
    assert delay_level(levels, 1) == 100
    assert delay_level(levels, 100) == 100
    assert delay_level(levels, 101) == 300
    assert delay_level(levels, 5000) == 1000


@pytest.mark.rabbitmq
async def test_declaring_twice_is_idempotent(bus: Bus) -> None:
    await bus.declare()
    await bus.publish(pki_task(), exchange="tasks")
    await wait_async(
        lambda: _depth_is(bus.names.handler("pki"), 1), what="the task in the pki queue"
    )


@pytest.mark.rabbitmq
async def test_the_quorum_topology_declares_and_delays() -> None:
    bus = Bus(bus_settings(queue_type=QueueType.QUORUM))
    await bus.connect()
    try:
        await bus.declare()
        await bus.declare()
        await bus.publish_delayed(pki_task(), target="tasks", delay_ms=100)
        await wait_async(
            lambda: _depth_is(bus.names.handler("pki"), 1), what="the delayed task, via quorum"
        )
    finally:
        await bus.close()
        await bus.delete_topology()


@pytest.mark.rabbitmq
async def test_a_missing_exchange_plugin_is_named(settings: Settings) -> None:
    bus = Bus(settings)
    topology = bus.topology
    broken = tuple(
        dataclasses.replace(e, type="x-clusterbus-missing") if e.type == CONSISTENT_HASH else e
        for e in topology.exchanges
    )
    bus.topology = dataclasses.replace(topology, exchanges=broken)
    try:
        with pytest.raises(PluginMissing, match="rabbitmq-plugins enable"):
            await bus.declare()
    finally:
        await bus.delete_topology()


@pytest.mark.rabbitmq
async def test_a_command_reaches_exactly_one_shard_chosen_by_subject(bus: Bus) -> None:
    shards = [bus.names.shard(k) for k in range(bus.settings.shards)]
    for _ in range(5):
        await bus.publish(_delete("alpha"), exchange="commands")
    depths = [await queue_depth(s) for s in shards]
    assert sorted(depths) == [0, 0, 0, 5], depths

    for i in range(40):
        await bus.publish(_delete(f"cluster-{i}"), exchange="events", routing_key="x.y")
    depths = [await queue_depth(s) for s in shards]
    assert sum(depths) == 45
    assert sum(1 for d in depths if d) >= 3, f"40 subjects should spread over the shards: {depths}"


@pytest.mark.rabbitmq
async def test_tasks_go_to_their_handler_queue(bus: Bus) -> None:
    for type_ in ("server.create", "member.ensure", "floatingip.ensure", "security_groups.ensure"):
        envelope = envelope_for(type_, "demo", {}, source="test")
        await bus.publish(envelope, exchange="tasks")
    n = bus.names
    assert await queue_depth(n.handler("compute")) == 1
    assert await queue_depth(n.handler("loadbalancer")) == 1
    assert await queue_depth(n.handler("network")) == 1
    assert await queue_depth(n.handler("security_groups")) == 1
    assert await queue_depth(n.handler("pki")) == 0


@pytest.mark.rabbitmq
async def test_an_unroutable_publish_raises(bus: Bus) -> None:
    envelope = envelope_for("nothing.listens", "demo", {}, source="test")
    with pytest.raises(Unroutable):
        await bus.publish(envelope, exchange="tasks")
    # Notifications are fire-and-forget: nobody has to be bound.
    await bus.publish(envelope, exchange="notifications")
    # The channel survived the returned message.
    await bus.publish(pki_task(), exchange="tasks")
    assert await queue_depth(bus.names.handler("pki")) == 1


def _delete(cluster: str) -> Envelope:
    return envelope_for("cluster.delete", cluster, {}, source="test")


async def _depth_is(queue: str, expected: int) -> bool:
    return await queue_depth(queue) == expected
