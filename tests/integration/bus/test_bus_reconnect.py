"""Consumers resume after the broker closes the connection (not a broker restart: it is shared)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bushelpers import pki_task, wait_for

from engine.bus import Bus, Delivery
from engine.messages.envelope import Envelope
from engine.settings import Settings

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def fast_bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(settings, name=f"{settings.topology_prefix}-reconnect", reconnect_interval_s=0.3)
    await b.connect()
    await b.declare()
    try:
        yield b
    finally:
        await b.close()
        await b.delete_topology()


async def _rabbitmqctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _close_connections_named(name: str) -> int:
    """Close, from the server side, every connection whose connection_name is ``name``."""
    # Tab-separated rows "<pid>\t<client properties>"; the json formatter prints pids in a
    # form close_connection does not accept.
    listing = await _rabbitmqctl("list_connections", "pid", "client_properties")
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if f'"{name}"' in line]
    for pid in pids:
        await _rabbitmqctl("close_connection", pid, "clusterbus reconnect test")
    return len(pids)


def _envelope(body: bytes, properties: dict[str, Any]) -> Envelope:
    """Envelope only, no payload check (the test sends a payload-less server.poll)."""
    return Envelope.model_validate_json(body)


async def test_consumers_resume_after_the_server_closes_the_connection(fast_bus: Bus) -> None:
    bus = fast_bus
    single: list[str] = []
    batched: list[str] = []

    async def handler(delivery: Delivery) -> None:
        single.append(delivery.envelope.id)

    async def batch_handler(deliveries: list[Delivery]) -> None:
        batched.extend(d.envelope.id for d in deliveries)

    await bus.consume(bus.names.handler("pki"), handler)
    await bus.consume_batches(
        bus.names.handler("compute"), batch_handler, max_batch=5, max_wait_ms=20, decoder=_envelope
    )
    before = pki_task()
    await bus.publish(before, exchange="tasks")
    await wait_for(lambda: single == [before.id], what="the first message")

    assert await _close_connections_named(bus.name) == 1
    # Publishing waits for the robust channel to come back, then retries once.
    after = pki_task()
    await bus.publish(after, exchange="tasks")
    server = pki_task().model_copy(update={"type": "server.poll"})
    await bus.publish(server, exchange="tasks", routing_key="server.poll")

    await wait_for(lambda: after.id in single, within=20, what="consumption after the reconnect")
    await wait_for(lambda: batched == [server.id], within=20, what="batch consumption resumed")
    assert single.count(before.id) == 1
