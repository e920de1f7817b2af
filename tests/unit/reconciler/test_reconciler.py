"""The reconciler tick: one cluster.reconcile per unsettled cluster, to the commands exchange."""

from __future__ import annotations

import asyncio
from datetime import datetime

from engine.messages.envelope import Envelope
from engine.reconciler import Reconciler
from engine.store import ClusterRow
from support.waiting import eventually


class FakeStore:
    def __init__(self, states: dict[str, str]) -> None:
        self.rows = [ClusterRow(id=c, state=s, version=1, doc={}) for c, s in states.items()]
        self.fail = False
        self.failures = 0

    async def list_clusters(self) -> list[ClusterRow]:
        if self.fail:
            self.failures += 1
            raise ConnectionError("store away")
        return self.rows


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[tuple[Envelope, str | None]] = []

    async def publish(self, envelope: Envelope, *, exchange: str | None) -> None:
        self.sent.append((envelope, exchange))


STATES = {
    "a": "provisioning_network",
    "b": "ready",
    "c": "deleting_network",
    "d": "failed",
    "e": "deleted",
    "f": "scaling",
}


async def test_a_tick_pokes_every_cluster_in_motion_and_no_settled_one() -> None:
    bus = FakeBus()
    sent = await Reconciler(FakeStore(STATES), bus, interval_s=1).tick()
    assert sent == 3
    assert sorted(e.subject for e, _ in bus.sent) == ["a", "c", "f"]
    for envelope, exchange in bus.sent:
        assert envelope.type == "cluster.reconcile"
        assert exchange is None  # the catalog's exchange: commands
        datetime.fromisoformat(envelope.data["now"])


async def test_the_loop_survives_a_failing_tick() -> None:
    store, bus = FakeStore({"a": "provisioning_network"}), FakeBus()
    store.fail = True
    task = asyncio.create_task(Reconciler(store, bus, interval_s=0.01).run())
    try:

        async def failed_thrice() -> bool:
            return store.failures >= 3

        await eventually(failed_thrice, within=5, what="several failing ticks")
        assert not task.done()
        store.fail = False

        async def ticked() -> bool:
            return bool(bus.sent)

        await eventually(ticked, within=5, what="a tick after the store came back")
    finally:
        task.cancel()
