"""``dlq list|replay`` and ``events tail`` as subprocesses against a running engine."""

from __future__ import annotations

import asyncio
import json
import sys

import aio_pika
import pytest
from clihelpers import cli, wait_state

from engine.bus import Bus
from engine.bus.delivery import H_ERROR, H_ORIGINAL_EXCHANGE, H_ORIGINAL_ROUTING_KEY, H_REASON
from engine.client import ClusterClient
from engine.messages import ClusterSpec, CreateCluster, make
from engine.settings import Settings
from support.processes import ClusterbusProcess, settings_env
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]


async def dead_letters(bus: Bus) -> int:
    async with await aio_pika.connect(bus.settings.amqp_url.get_secret_value()) as conn:
        queue = await (await conn.channel()).declare_queue(bus.names.dead_letter, passive=True)
        return queue.declaration_result.message_count or 0


async def test_dlq_list_keeps_the_poison_and_replay_resends_to_the_origin(
    settings: Settings, bus: Bus, client: ClusterClient, engine: ClusterbusProcess
) -> None:
    poison = {"message_id": "poison-1", "headers": {"ce-subject": "p"}}
    await bus.publisher.publish_raw(bus.names.commands, "cluster.create", b"{not json", poison)
    await eventually(lambda: _at_least(bus, 1), what="the poison in the dead-letter queue")

    listed = await cli(settings, "dlq", "list")
    assert listed.code == 0, listed.err
    rows = [json.loads(line) for line in listed.out.splitlines() if line.startswith("{")]
    assert [r["id"] for r in rows] == ["poison-1"]
    assert rows[0]["origin"] == f"{bus.names.commands} / cluster.create"
    assert rows[0]["reason"]
    assert await dead_letters(bus) == 1  # listing lost nothing

    # A good command that was dead-lettered (say, while the engine was broken): replay it.
    good = make(CreateCluster(spec=ClusterSpec(name="revived", cloud="c")), source="t",
                subject="revived")  # fmt: skip
    props = good.amqp_properties()
    props["headers"].update({H_REASON: "engine was down", H_ERROR: "Test",
                             H_ORIGINAL_EXCHANGE: bus.names.commands,
                             H_ORIGINAL_ROUTING_KEY: "cluster.create"})  # fmt: skip
    await bus.publisher.publish_raw(bus.names.dlx, "cluster.create", good.body(), props)
    await eventually(lambda: _at_least(bus, 2), what="two dead letters")

    replayed = await cli(settings, "dlq", "replay", good.id)
    assert replayed.code == 0, replayed.err
    await wait_state(client, "revived", "provisioning_network")
    assert await dead_letters(bus) == 1  # the poison stays, the good one is gone
    unknown = await cli(settings, "dlq", "replay", "no-such-id")
    assert unknown.code == 1
    both = await cli(settings, "dlq", "replay")
    assert both.code == 2


async def test_events_tail_prints_notifications(
    settings: Settings, client: ClusterClient, engine: ClusterbusProcess
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "events", "tail", "--type", "cluster.#", "--count", "1",
        env=settings_env(settings, COLUMNS="200"), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"listening" in first  # bound: what is published from now on is seen
    await client.create_cluster(ClusterSpec(name="tailed", cloud="c"))
    rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"cluster.state_changed." in rest and b".tailed" in rest


async def _at_least(bus: Bus, n: int) -> bool:
    return await dead_letters(bus) >= n
