"""Delay queues, handler retries with backoff, and dead-lettering after the limit."""

from __future__ import annotations

import time

import pytest
from bushelpers import drain, pki_task, queue_depth, wait_async, wait_for

from engine.bus import Bus, Delivery, RawMessage
from engine.bus.delivery import H_ATTEMPT, H_ERROR, H_REASON

pytestmark = pytest.mark.rabbitmq


async def test_a_delayed_task_returns_to_tasks_after_the_delay(bus: Bus) -> None:
    arrived: list[tuple[float, str]] = []

    async def handler(delivery: Delivery) -> None:
        arrived.append((time.monotonic(), delivery.routing_key))

    await bus.consume(bus.names.handler("pki"), handler)
    task = pki_task()
    start = time.monotonic()
    level = await bus.publish_delayed(task, target="tasks", delay_ms=250)
    assert level == 300
    await wait_for(lambda: len(arrived) == 1, what="the delayed task")
    at, routing_key = arrived[0]
    assert routing_key == "pki.ensure"
    assert 0.25 <= at - start < 3.0
    # The headers exchange routed it to the one level queue only: no copy went to the engine.
    shards = [bus.names.shard(k) for k in range(bus.settings.shards)]
    assert [await queue_depth(s) for s in shards] == [0] * len(shards)


async def test_a_raw_event_is_delayed_back_to_events_and_reaches_a_shard(bus: Bus) -> None:
    task = pki_task(cluster="late")
    raw = RawMessage("pki.ready", task.body(), task.amqp_properties())
    await bus.publish_delayed(raw, target="events", delay_ms=10_000)  # capped at 300
    shards = [bus.names.shard(k) for k in range(bus.settings.shards)]
    assert sum([await queue_depth(s) for s in shards]) == 0

    async def arrived() -> bool:
        return sum([await queue_depth(s) for s in shards]) == 1

    await wait_async(arrived, within=5, what="the delayed event on a shard")


async def test_a_failing_handler_is_retried_then_dead_lettered(bus: Bus) -> None:
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise RuntimeError("cloud unreachable")

    await bus.consume(bus.names.handler("pki"), handler)
    task = pki_task()
    await bus.publish(task, exchange="tasks")

    [dead] = await drain(bus.names.dead_letter, 1)
    assert attempts == [0, 1, 2]  # delivery_limit = 3 runs
    assert dead.headers[H_REASON] == "handler error: RuntimeError: cloud unreachable"
    assert dead.headers[H_ERROR] == "RuntimeError"
    assert dead.headers[H_ATTEMPT] == 2
    assert dead.message_id == task.id


async def test_a_flaky_handler_succeeds_on_retry(bus: Bus) -> None:
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 0:
            raise TimeoutError("slow cloud")

    await bus.consume(bus.names.handler("pki"), handler)
    await bus.publish(pki_task(), exchange="tasks")
    await wait_for(lambda: attempts == [0, 1], what="one retry")
    assert await queue_depth(bus.names.dead_letter) == 0
