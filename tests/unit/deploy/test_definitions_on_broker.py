"""The broker itself agrees: definitions.json declares what the engine declares, argument for
argument (RabbitMQ answers PRECONDITION_FAILED to any difference)."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
import pytest
from deploy_support import definitions

from engine.bus import topology as topo
from engine.settings import QueueType, Settings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PREFIX = "clusterbus."


def renamed(value: Any, prefix: str) -> Any:
    """``value`` with the definitions' prefix swapped for a unique one (names and DLX args)."""
    if isinstance(value, str) and value.startswith(PREFIX):
        return prefix + "." + value[len(PREFIX) :]
    if isinstance(value, dict):
        return {k: renamed(v, prefix) for k, v in value.items()}
    return value


async def declare_from_definitions(channel: aio_pika.abc.AbstractChannel, prefix: str) -> None:
    defs = renamed(definitions(), prefix)
    exchanges = {}
    for e in (renamed(x, prefix) for x in defs["exchanges"]):
        exchanges[e["name"]] = await channel.declare_exchange(
            e["name"], e["type"], durable=e["durable"], arguments=e["arguments"] or None
        )
    queues = {}
    for q in (renamed(x, prefix) for x in defs["queues"]):
        queues[q["name"]] = await channel.declare_queue(
            q["name"], durable=q["durable"], arguments=q["arguments"]
        )
    for b in (renamed(x, prefix) for x in defs["bindings"]):
        target = exchanges if b["destination_type"] == "exchange" else queues
        await target[b["destination"]].bind(
            exchanges[b["source"]], b["routing_key"], arguments=b["arguments"] or None
        )


@pytest.mark.rabbitmq
async def test_engine_redeclares_the_imported_topology_without_conflict() -> None:
    prefix = f"deploytest-{uuid.uuid4().hex[:12]}"
    settings = Settings(topology_prefix=prefix, queue_type=QueueType.QUORUM, shards=4)
    topology = topo.build_topology(settings)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await declare_from_definitions(await connection.channel(), prefix)
        # The engine's declaration on top: any argument difference closes the channel.
        channel = await connection.channel()
        await topo.declare(channel, topology)
        assert not channel.is_closed
        # Control: the broker does compare arguments, so the check above means something.
        probe = await connection.channel()
        other = {**dict(topology.queues[1].arguments), "x-single-active-consumer": False}
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await probe.declare_queue(topology.names.shard(0), durable=True, arguments=other)
    finally:
        cleanup = await connection.channel()
        await topo.delete(cleanup, topology)
        await connection.close()
