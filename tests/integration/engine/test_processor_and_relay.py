"""The processor's aggregate cache across replicas, and the relay's sweep (real SQLite/RabbitMQ)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.bus import Bus
from engine.messages.codec import decode
from engine.messages.envelope import envelope_for
from engine.messages.registry import parse
from engine.processor import Processor
from engine.relay import OutboxRelay
from engine.store import Store
from statemachines import handle
from support.engine import TapQueue, applied_triggers, create_command
from support.waiting import eventually


async def test_two_replicas_with_stale_caches_apply_every_message_once(store: Store) -> None:
    first, second = Processor(store, handle), Processor(store, handle)
    create = create_command("handover")
    await first.process([create])
    # Replica 2 takes the shard over and moves the cluster on; replica 1's cache is now stale.
    event_a = create.caused(
        "network.ready",
        {"cluster_id": "handover", "network_id": "a", "subnet_id": "s", "router_id": "r"},
        source="tests",
    )
    event_b = create.caused("pki.ready", {"cluster_id": "handover"}, source="tests")
    assert (await second.process([event_a])).applied == 1
    result = await first.process([event_b])  # version conflict -> reload -> applied
    assert result.applied == 1
    assert await applied_triggers(store, "handover") == [
        "cluster.create",
        "network.ready",
        "pki.ready",
    ]
    cluster, _ = await store.load("handover") or (None, None)
    assert cluster is not None and cluster.version == 3


@pytest.mark.rabbitmq
async def test_periodic_sweep_leaves_fresh_rows_to_the_fast_path(store: Store, bus: Bus) -> None:
    processor = Processor(store, handle, exchange_prefix=bus.names.prefix)
    committed = await processor.process([create_command("sweepme")])
    assert committed.outbox  # committed, not published: as after a crash
    relay = OutboxRelay(store, bus)
    async with TapQueue(bus, "tasks") as tasks:
        assert await relay.sweep(older_than=timedelta(seconds=30)) == 0
        assert await relay.sweep() == len(committed.outbox)  # the start-up sweep takes all

        async def published() -> bool:
            return {"pki.ensure", "network.ensure"} <= set(tasks.types())

        await eventually(published, what="the swept tasks")
    assert await store.unsent_outbox() == []


@pytest.mark.rabbitmq
async def test_a_row_for_an_unknown_exchange_is_dead_lettered_not_published(
    store: Store, bus: Bus
) -> None:
    """Rows written under another topology prefix: published as they are, the broker's 404
    would close the channel (and with publishes in flight, the connection) on every sweep."""
    stray = await Processor(store, handle, exchange_prefix="elsewhere").process(
        [create_command("stray")]
    )
    good = await Processor(store, handle, exchange_prefix=bus.names.prefix).process(
        [create_command("good")]
    )
    relay = OutboxRelay(store, bus)
    async with TapQueue(bus, "dlx") as dead, TapQueue(bus, "tasks") as tasks:
        assert await relay.sweep() == len(stray.outbox) + len(good.outbox)

        async def arrived() -> bool:
            return len(dead.messages) == len(stray.outbox) and "network.ensure" in tasks.types()

        await eventually(arrived, what="the stray rows dead-lettered, the good ones published")
    assert {m.headers["x-clusterbus-error"] for m in dead.messages} == {"UnknownExchange"}
    assert {m.headers["x-clusterbus-original-exchange"] for m in dead.messages} == {
        m.exchange for m in stray.outbox
    }
    assert await store.unsent_outbox() == []


async def test_every_notification_the_engine_writes_passes_the_published_contract(
    store: Store,
) -> None:
    processor = Processor(store, handle)
    create = create_command("contract")
    events = [
        create.caused(
            "network.ready",
            {"cluster_id": "contract", "network_id": "n", "subnet_id": "s", "router_id": "r"},
            source="tests",
        ),
        create.caused(
            "security_groups.ready",
            {"cluster_id": "contract", "controlplane_id": "c", "worker_id": "w", "bastion_id": "b"},
            source="tests",
        ),
    ]
    outbox = [m for e in [create, *events] for m in (await processor.process([e])).outbox]
    notifications = [m for m in outbox if m.exchange.endswith(".notifications")]
    assert {"cluster.state_changed", "machine.state_changed"} <= {
        m.routing_key.split(".")[0] + "." + m.routing_key.split(".")[1] for m in notifications
    }
    for message in outbox:
        envelope = decode(message.body, message.properties)  # strict: unknown fields fail
        parse(envelope)


async def test_a_minimal_spec_from_another_producer_gets_its_defaults(store: Store) -> None:
    """Regression: the machines read defaults (external_network, ...) a producer may omit."""
    minimal = {"spec": {"name": "minimal", "cloud": "clusterbus-sim"}}
    command = envelope_for("cluster.create", "minimal", minimal, source="other-service")
    result = await Processor(store, handle).process([command])
    assert result.applied == 1 and not result.rejected
    cluster, _ = await store.load("minimal") or (None, None)
    assert cluster is not None and cluster.doc["spec"]["external_network"] == "public"
