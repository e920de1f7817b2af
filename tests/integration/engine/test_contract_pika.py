"""A foreign producer (pika, plain JSON) drives the engine; an unauthorized one is dead-lettered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from engine.bus import Bus
from engine.messages.spec import ClusterSpec
from engine.settings import Settings
from engine.store import Store
from support.engine import wait_engine_ready
from support.processes import ClusterbusProcess, engine_process
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]


def structured_create(name: str) -> bytes:
    """A structured-mode CloudEvent, written by hand like a non-Python producer would."""
    spec = ClusterSpec(name=name, cloud="clusterbus-sim").model_dump(mode="json")
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:test:portal",
        "type": "cluster.create",
        "subject": name,
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "correlationid": f"corr-{name}",
        "data": {"spec": spec},
    }
    return json.dumps(event).encode()


def pika_publish(url: str, exchange: str, name: str, user: str) -> None:
    """Publish cluster.create the documented way: confirms, mandatory, persistent, user_id."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        message_id = uuid.uuid4().hex
        properties = pika.BasicProperties(
            message_id=message_id,
            type="cluster.create",
            content_type="application/cloudevents+json",
            correlation_id=f"corr-{name}",
            user_id=user,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers={"ce-subject": name, "ce-type": "cluster.create", "ce-id": message_id},
        )
        channel.basic_publish(
            exchange, "cluster.create", structured_create(name), properties, mandatory=True
        )
    finally:
        connection.close()


class PikaTap:
    """A private queue bound with pika; ``drain`` returns what arrived so far."""

    def __init__(self, url: str, exchange: str, pattern: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        result = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._queue = result.method.queue
        self._channel.queue_bind(self._queue, exchange, pattern)
        self.received: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def drain(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        while True:
            method, props, body = self._channel.basic_get(self._queue, auto_ack=True)
            if method is None:
                return self.received
            self.received.append((method.routing_key, json.loads(body), props.headers or {}))

    def close(self) -> None:
        self._connection.close()


@pytest.fixture
def intruder() -> Iterator[str]:
    """A RabbitMQ user with full permissions on / that the engine does not allow."""
    user, password = f"test-intruder-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    subprocess.run(["rabbitmqctl", "add_user", user, password], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", "/", user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield f"amqp://{user}:{password}@127.0.0.1:5672/%2F"
    finally:
        subprocess.run(["rabbitmqctl", "delete_user", user], check=False, capture_output=True)


async def test_pika_create_reaches_provisioning_network(
    settings: Settings, bus: Bus, spawn: list[ClusterbusProcess], tmp_path: Path
) -> None:
    url = settings.amqp_url.get_secret_value()
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)
    tap = await asyncio.to_thread(PikaTap, url, bus.names.notifications, "cluster.state_changed.#")
    try:
        await asyncio.to_thread(pika_publish, url, bus.names.commands, "pika-demo", "guest")

        async def reached() -> bool:
            seen = await asyncio.to_thread(tap.drain)
            wanted = "cluster.state_changed.provisioning_network.pika-demo"
            return any(key == wanted for key, _, _ in seen)

        await eventually(reached, what="provisioning_network notification")
        event = next(body for key, body, _ in tap.received if "provisioning_network" in key)
        assert event["subject"] == "pika-demo"
        assert event["correlationid"] == "corr-pika-demo"
        assert event["data"]["to_state"] == "provisioning_network"
    finally:
        await asyncio.to_thread(tap.close)


async def test_command_from_unlisted_user_is_dead_lettered(
    settings: Settings,
    bus: Bus,
    store: Store,
    spawn: list[ClusterbusProcess],
    tmp_path: Path,
    intruder: str,
) -> None:
    spawn.append(engine_process(settings, tmp_path))
    await wait_engine_ready(bus)
    user = intruder.split("//", 1)[1].split(":", 1)[0]
    dead = await asyncio.to_thread(
        PikaTap, settings.amqp_url.get_secret_value(), bus.names.dlx, "#"
    )
    try:
        await asyncio.to_thread(pika_publish, intruder, bus.names.commands, "intruded", user)

        async def dead_lettered() -> bool:
            return bool(await asyncio.to_thread(dead.drain))

        await eventually(dead_lettered, what="the command to be dead-lettered")
        key, body, headers = dead.received[0]
        assert key == "cluster.create"
        assert body["subject"] == "intruded"
        assert headers["x-clusterbus-error"] == "Unauthorized"
        assert user in headers["x-clusterbus-reason"]
    finally:
        await asyncio.to_thread(dead.close)
    assert await store.load("intruded") is None
