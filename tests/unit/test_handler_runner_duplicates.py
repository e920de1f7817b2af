"""The same task delivered twice at once runs one copy after the other (fakes, no I/O)."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.bus.delivery import Delivery
from engine.handler_service import HandlerRunner, task_key
from engine.messages.envelope import Envelope, envelope_for
from handlers.base import Deps, Reply
from support.waiting import eventually


class CountingHandler:
    """Looks for its resource, waits like a cloud call, then creates it if it saw none."""

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self.created: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, data: dict[str, Any], deps: Deps) -> Reply:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            found = data["cluster_id"] in self.created
            await self.release.wait()
            if not found:
                self.created.append(data["cluster_id"])
            return Reply.done()
        finally:
            self.running -= 1


def delivery(envelope: Envelope) -> Delivery:
    return Delivery(
        envelope=envelope,
        message=None,  # type: ignore[arg-type]  # the runner never touches the AMQP message
        routing_key=envelope.type,
        exchange="tasks",
        redelivered=False,
        headers={},
    )


def network_task(cluster: str, **extra: Any) -> Envelope:
    return envelope_for(
        "network.ensure", cluster, {"cluster_id": cluster, "cloud": "sim", **extra}, source="t"
    )


async def test_duplicates_run_one_after_the_other_and_create_once() -> None:
    handler = CountingHandler()
    runner = HandlerRunner(
        None,  # type: ignore[arg-type]  # a reply without events publishes nothing
        {"network.ensure": handler},
        Deps(clouds=None, secrets=None),  # type: ignore[arg-type]
        source="tests",
        error_limit=3,
    )
    task = network_task("dup")
    resent = delivery(task)  # the same row published twice: the same message id and data
    other = delivery(network_task("other"))
    runs = [asyncio.create_task(runner.on_task(d)) for d in (delivery(task), resent, other)]

    async def both_keys_started() -> bool:
        return handler.running >= 2

    await eventually(both_keys_started, within=5, interval=0.001, what="two tasks running")
    assert handler.most_at_once == 2
    handler.release.set()
    await asyncio.wait_for(asyncio.gather(*runs), timeout=5)
    assert sorted(handler.created) == ["dup", "other"]  # not "dup" twice
    assert handler.most_at_once == 2


def test_the_poll_counter_does_not_make_a_different_task() -> None:
    assert task_key(network_task("a", attempt=1)) == task_key(network_task("a", attempt=4))
    assert task_key(network_task("a")) != task_key(network_task("b"))
