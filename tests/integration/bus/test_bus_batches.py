"""consume_batches: grouping, the wait window, order, and shard re-routing."""

from __future__ import annotations

import time

import pytest
from bushelpers import drain, pki_task, queue_depth, wait_for

from engine.bus import Bus, Delivery
from engine.bus.delivery import H_ERROR, BatchHandler
from engine.messages.envelope import CONTENT_TYPE_STRUCTURED, envelope_for

pytestmark = pytest.mark.rabbitmq


async def test_batches_group_messages_in_order(bus: Bus) -> None:
    batches: list[list[str]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        batches.append([d.envelope.id for d in deliveries])

    sent = [pki_task() for _ in range(10)]
    for task in sent:
        await bus.publish(task, exchange="tasks")
    queue = bus.names.handler("pki")
    await bus.consume_batches(queue, handler, max_batch=4, max_wait_ms=300)

    await wait_for(lambda: sum(map(len, batches)) == 10, what="10 handled messages")
    assert [i for b in batches for i in b] == [t.id for t in sent]
    assert all(len(b) <= 4 for b in batches)
    assert max(len(b) for b in batches) == 4
    assert await queue_depth(queue) == 0  # the multiple acks covered everything


async def test_a_lone_message_is_handled_after_the_wait_window(bus: Bus) -> None:
    handled: list[tuple[float, int]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.append((time.monotonic(), len(deliveries)))

    await bus.consume_batches(bus.names.handler("pki"), handler, max_batch=50, max_wait_ms=200)
    start = time.monotonic()
    await bus.publish(pki_task(), exchange="tasks")
    await wait_for(lambda: len(handled) == 1, what="the lone message")
    at, size = handled[0]
    assert size == 1
    assert 0.18 <= at - start < 3.0


async def test_poison_inside_a_batch_is_dead_lettered_and_the_rest_handled(bus: Bus) -> None:
    handled: list[str] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.extend(d.envelope.id for d in deliveries)

    good = [pki_task() for _ in range(3)]
    await bus.publish(good[0], exchange="tasks")
    props = {"content_type": CONTENT_TYPE_STRUCTURED}
    await bus.publish_raw(bus.names.tasks, "pki.ensure", b"\xff\xfe not json", props)
    for task in good[1:]:
        await bus.publish(task, exchange="tasks")
    queue = bus.names.handler("pki")
    await bus.consume_batches(queue, handler, max_batch=10, max_wait_ms=100)

    await wait_for(lambda: len(handled) == 3, what="the good messages")
    assert handled == [t.id for t in good]
    [dead] = await drain(bus.names.dead_letter, 1)
    assert dead.headers[H_ERROR] == "Malformed"
    assert await queue_depth(queue) == 0


async def test_a_message_without_the_hash_header_is_rerouted_to_its_clusters_shard(
    bus: Bus,
) -> None:
    seen: list[tuple[str, str, bool]] = []  # (shard, subject, had header)

    def handler_for(shard: str) -> BatchHandler:
        async def handler(deliveries: list[Delivery]) -> None:
            for d in deliveries:
                seen.append((shard, d.envelope.subject, "ce-subject" in d.headers))

        return handler

    for k in range(bus.settings.shards):
        shard = bus.names.shard(k)
        await bus.consume_batches(shard, handler_for(shard), max_batch=8, max_wait_ms=20)

    subjects = [f"cluster-{i}" for i in range(8)]
    for subject in subjects:
        with_header = envelope_for("cluster.delete", subject, {}, source="test")
        await bus.publish(with_header, exchange="commands")
        without = envelope_for("cluster.delete", subject, {}, source="test")
        props = without.amqp_properties()
        del props["headers"]["ce-subject"]
        await bus.publish_raw(bus.names.commands, "cluster.delete", without.body(), props)

    await wait_for(lambda: len(seen) == 2 * len(subjects), what="every command handled")
    assert all(had for _, _, had in seen), "the re-routed copy carries the header"
    shard_of = {subject: shard for shard, subject, _ in seen}
    assert all(shard_of[subject] == shard for shard, subject, _ in seen)
    assert len(set(shard_of.values())) > 1
