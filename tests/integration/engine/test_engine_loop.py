"""The engine loop against the real RabbitMQ and a SQLite store, as child processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bus import Bus
from engine.messages.envelope import envelope_for
from engine.service import CRASH_EXIT_CODE, CRASH_POINT_ENV
from engine.settings import Settings
from engine.store import Store
from support.engine import TapQueue, applied_triggers, create_command, wait_engine_ready
from support.processes import ClusterbusProcess, engine_process
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]

FIRST_TASKS = {"pki.ensure", "network.ensure"}


async def test_a_command_delivered_twice_is_applied_once(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)
    command = create_command("twice")
    async with TapQueue(bus, "tasks") as tasks:
        await bus.publish(command, exchange=None)
        await bus.publish(command, exchange=None)  # same message id: a redelivery

        async def two_tasks() -> bool:
            return set(tasks.types()) >= FIRST_TASKS

        await eventually(two_tasks, what="the first tasks of the cluster")

        async def settled() -> bool:
            return await store.unsent_outbox() == [] and bool(await store.load("twice"))

        await eventually(settled, what="outbox drained")
        assert sorted(tasks.types()) == sorted(FIRST_TASKS)  # not twice each
    assert await applied_triggers(store, "twice") == ["cluster.create"]


async def test_crash_between_commit_and_publish_loses_nothing(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    crashing = engine_process(settings, tmp_path, **{CRASH_POINT_ENV: "after-commit"})
    spawn.append(crashing)
    await wait_engine_ready(bus)
    async with TapQueue(bus, "tasks") as tasks:
        await bus.publish(create_command("crash-after"), exchange=None)

        async def died() -> bool:
            return crashing.exit_code == CRASH_EXIT_CODE

        await eventually(died, what="the engine to crash after its commit")
        assert tasks.types() == []  # committed, never published
        assert len(await store.unsent_outbox()) >= len(FIRST_TASKS)

        spawn.append(engine_process(settings, tmp_path))

        async def published() -> bool:
            return set(tasks.types()) >= FIRST_TASKS

        await eventually(published, what="the relay to publish the outbox on restart")
    assert await applied_triggers(store, "crash-after") == ["cluster.create"]


async def test_crash_before_commit_means_redelivery_and_one_application(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    crashing = engine_process(settings, tmp_path, **{CRASH_POINT_ENV: "before-commit"})
    spawn.append(crashing)
    await wait_engine_ready(bus)
    await bus.publish(create_command("crash-before"), exchange=None)

    async def died() -> bool:
        return crashing.exit_code == CRASH_EXIT_CODE

    await eventually(died, what="the engine to crash before its commit")
    assert await store.load("crash-before") is None
    spawn.append(engine_process(settings, tmp_path))

    async def applied() -> list[str]:
        return await applied_triggers(store, "crash-before")

    assert await eventually(applied, what="the redelivered command") == ["cluster.create"]


async def test_each_poison_message_is_dead_lettered_and_good_ones_pass(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)
    good = create_command("good-after-poison")
    oversized = create_command("huge", worker_pools=[])
    poison = {
        "malformed JSON": b"{not json",
        "not an envelope": b'{"hello": "world"}',
        "unknown type": envelope_for("cluster.explode", "x", {}, source="t").body(),
        "schema-invalid": envelope_for(
            "cluster.create", "bad", {"spec": {"name": "BAD NAME"}}, source="t"
        ).body(),
        "oversized": oversized.body() + b" " * settings.max_message_bytes,
    }
    async with TapQueue(bus, "dlx") as dead:
        for body in poison.values():
            await bus.publish_raw(
                "commands",
                "cluster.create",
                body,
                {"headers": {"ce-subject": "poison"}, "delivery_mode": 2},
            )
        await bus.publish(good, exchange=None)

        async def all_dead() -> bool:
            return len(dead.messages) >= len(poison)

        await eventually(all_dead, what="every poison message in the dead-letter exchange")
        reasons = [str(m.headers.get("x-clusterbus-reason", "")) for m in dead.messages]
        assert all(reasons), reasons
        assert any("max_message_bytes" in r for r in reasons)

        async def good_applied() -> list[str]:
            return await applied_triggers(store, "good-after-poison")

        assert await eventually(good_applied) == ["cluster.create"]


async def test_events_of_one_cluster_apply_in_order_across_two_engines(
    settings: Settings, bus: Bus, store: Store, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    spawn.append(engine_process(settings, tmp_path))
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)
    clusters = [f"order-{i}" for i in range(6)]
    sequences: dict[str, list[str]] = {}
    for n, name in enumerate(clusters):
        if n == len(clusters) // 2:
            spawn[0].kill()  # the active consumer dies: the standby takes its shards over
        create = create_command(name)
        events = [
            create.caused(
                "network.ready",
                {"cluster_id": name, "network_id": f"n{i}", "subnet_id": "s", "router_id": "r"},
                source="tests",
            )
            for i in range(3)
        ]
        events.append(create.caused("pki.ready", {"cluster_id": name}, source="tests"))
        sequences[name] = ["cluster.create"] + [e.type for e in events]
        await bus.publish(create, exchange=None)
        for event in events:
            await bus.publish(event, exchange=None)

    async def all_applied() -> bool:
        done = [len(await applied_triggers(store, c)) == len(sequences[c]) for c in clusters]
        return all(done)

    await eventually(all_applied, within=40, what="every cluster's messages applied")
    for name in clusters:
        assert await applied_triggers(store, name) == sequences[name]
        cluster, _ = await store.load(name) or (None, None)
        assert cluster is not None
        # Applied in order: the IDs recorded last are those of the last network.ready.
        assert cluster.doc["ids"]["network"]["network_id"] == "n2"
