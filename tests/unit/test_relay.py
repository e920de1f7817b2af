"""The relay's sweep loop: outlives a store outage, purges old sent rows (fakes, no I/O)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from engine.relay import OutboxRelay
from engine.store import OutboxMessage
from support.waiting import eventually

ROW = OutboxMessage(
    seq=7,
    message_id="m-1",
    exchange="tasks",
    routing_key="network.ensure",
    body=b"{}",
    properties={"headers": {}},
)


class FlakyStore:
    """Unsent rows after ``failures`` calls that fail like a database that is away."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[int] = []
        self.purges: list[timedelta] = []
        self.inbox_purges: list[timedelta] = []
        self.unsent_calls = 0

    async def unsent_outbox(
        self, limit: int = 500, *, older_than: timedelta | None = None
    ) -> list[OutboxMessage]:
        self.unsent_calls += 1
        if self.failures:
            self.failures -= 1
            raise OperationalError("SELECT ...", {}, ConnectionRefusedError("database away"))
        return [] if ROW.seq in self.sent else [ROW]

    async def mark_sent(self, seqs: list[int]) -> None:
        self.sent.extend(seqs)

    async def purge_outbox(self, older_than: timedelta) -> int:
        self.purges.append(older_than)
        return 0

    async def purge_inbox(self, older_than: timedelta) -> int:
        self.inbox_purges.append(older_than)
        return 0


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    async def publish_raw(
        self, exchange: str, routing_key: str, body: bytes, properties: Any
    ) -> None:
        self.published.append((exchange, routing_key))

    def knows_exchange(self, exchange: str) -> bool:
        return True


async def test_the_sweep_loop_survives_a_store_outage() -> None:
    store, bus = FlakyStore(failures=3), RecordingBus()
    relay = OutboxRelay(store, bus, sweep_interval_s=0.01, grace=timedelta(0))  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    try:

        async def swept() -> bool:
            assert not task.done(), task  # a dead loop would never publish again
            return store.sent == [7]

        await eventually(swept, within=5, what="the row swept after the outage")
        assert bus.published == [("tasks", "network.ensure")]
    finally:
        task.cancel()


async def test_the_loop_purges_old_sent_rows_now_and_then() -> None:
    store, bus = FlakyStore(failures=0), RecordingBus()
    relay = OutboxRelay(  # type: ignore[arg-type]
        store,
        bus,
        sweep_interval_s=0.01,
        keep_sent=timedelta(minutes=5),
        keep_inbox=timedelta(days=2),
        purge_interval_s=3600,
    )
    task = asyncio.create_task(relay.run())
    try:

        async def swept_twice() -> bool:
            return len(bus.published) == 1 and store.sent == [7] and store.unsent_calls >= 3

        await eventually(swept_twice, within=5, what="several sweeps")
        assert store.purges == [timedelta(minutes=5)]  # once at start, then once an hour
        assert store.inbox_purges == [timedelta(days=2)]
    finally:
        task.cancel()
