"""Poison messages end in P.dead-letter with why; the good message behind them is handled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bushelpers import drain, pki_task, wait_for

from engine.bus import Bus, Delivery
from engine.bus.delivery import (
    H_ERROR,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_ROUTING_KEY,
    H_QUEUE,
    H_REASON,
)
from engine.messages.envelope import CONTENT_TYPE_STRUCTURED, Envelope, envelope_for
from engine.messages.errors import InvalidPayload

pytestmark = pytest.mark.rabbitmq

STRUCTURED = {"content_type": CONTENT_TYPE_STRUCTURED}


def _props(envelope: Envelope) -> dict[str, Any]:
    return envelope.amqp_properties()


async def test_each_kind_of_poison_is_dead_lettered_and_the_good_message_handled(
    bus: Bus,
) -> None:
    handled: list[str] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.envelope.id)

    unknown = envelope_for("pki.bogus", "demo", {}, source="test")
    invalid = envelope_for("pki.ensure", "demo", {"cluster_id": "demo"}, source="test")
    too_large = pki_task()
    poison: list[tuple[bytes, dict[str, Any], str]] = [
        (b"not json {", STRUCTURED, "Malformed"),
        (b'{"hello": "world"}', {"content_type": "application/json"}, "Malformed"),
        (unknown.body(), _props(unknown), "UnknownMessageType"),
        (invalid.body(), _props(invalid), "InvalidPayload"),
        (too_large.body() + b" " * 3000, _props(too_large), "TooLarge"),
    ]
    tasks = bus.names.tasks
    for body, props, _ in poison:
        await bus.publish_raw(tasks, "pki.ensure", body, props)
    good = pki_task()
    await bus.publish(good, exchange="tasks")

    await bus.consume(bus.names.handler("pki"), handler)
    await wait_for(lambda: handled == [good.id], what="the good message")

    dead = await drain(bus.names.dead_letter, len(poison))
    errors = sorted(str(m.headers[H_ERROR]) for m in dead)
    assert errors == sorted(kind for _, _, kind in poison)
    for m in dead:
        assert m.headers[H_REASON]
        assert m.headers[H_ORIGINAL_EXCHANGE] == tasks
        assert m.headers[H_ORIGINAL_ROUTING_KEY] == "pki.ensure"
        assert m.headers[H_QUEUE] == bus.names.handler("pki")
        assert m.routing_key == "pki.ensure"
    bodies = {m.body for m in dead}
    assert b"not json {" in bodies  # the copy keeps the original bytes for inspection


async def test_a_custom_decoder_error_is_dead_lettered_with_its_reason(bus: Bus) -> None:
    handled: list[str] = []

    def decoder(body: bytes, properties: dict[str, Any]) -> Envelope:
        document = json.loads(body)
        if document["data"].get("cloud") == "forbidden":
            raise InvalidPayload("data.cloud: not allowed here")
        return Envelope.model_validate(document)

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.envelope.id)

    bad, good = pki_task(), pki_task()
    bad = bad.model_copy(update={"data": {**bad.data, "cloud": "forbidden"}})
    await bus.publish(bad, exchange="tasks")
    await bus.publish(good, exchange="tasks")
    await bus.consume(bus.names.handler("pki"), handler, decoder=decoder)

    await wait_for(lambda: handled == [good.id], what="the good message")
    [dead] = await drain(bus.names.dead_letter, 1)
    assert dead.headers[H_ERROR] == "InvalidPayload"
    assert dead.headers[H_REASON] == "data.cloud: not allowed here"
    assert dead.message_id == bad.id


async def test_a_handler_message_error_dead_letters_without_retry(bus: Bus) -> None:
    calls: list[str] = []

    async def handler(delivery: Delivery) -> None:
        calls.append(delivery.envelope.id)
        raise InvalidPayload("cloud 'sim' is not in clouds.yaml")

    task = pki_task()
    await bus.publish(task, exchange="tasks")
    await bus.consume(bus.names.handler("pki"), handler)
    [dead] = await drain(bus.names.dead_letter, 1)
    assert dead.headers[H_REASON] == "cloud 'sim' is not in clouds.yaml"
    assert calls == [task.id]
