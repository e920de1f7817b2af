"""ShardBalancer in-process against a real SQLite store, with fake subscriptions (no broker)."""

from __future__ import annotations

from pathlib import Path

from engine.settings import Settings
from engine.shard_balancer import ShardBalancer
from engine.store import Store


class FakeSubscription:
    def __init__(self, shard: int, live: set[int]) -> None:
        self.shard = shard
        self._live = live
        live.add(shard)

    async def cancel(self) -> None:
        self._live.discard(self.shard)


def balancer(store: Store, settings: Settings, live: set[int], name: str) -> ShardBalancer:
    async def subscribe(shard: int) -> FakeSubscription:
        assert shard not in live, f"shard {shard} subscribed twice"
        return FakeSubscription(shard, live)

    return ShardBalancer(store, settings, subscribe, member_id=name)


async def test_replicas_converge_to_fair_shares_and_back(tmp_path: Path) -> None:
    settings = Settings(store_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}", shards=5)
    store = await Store.open(settings.store_url)
    try:
        live_a: set[int] = set()
        live_b: set[int] = set()
        a = balancer(store, settings, live_a, "a")
        b = balancer(store, settings, live_b, "b")
        await a.tick()
        assert live_a == a.consuming == {0, 1, 2, 3, 4}
        await b.tick()  # b is counted now, but a still holds everything
        assert live_b == set()
        await a.tick()  # fair share ceil(5/2) = 3: a gives back two
        assert live_a == {0, 1, 2}
        await b.tick()
        assert live_b == {3, 4}
        await a.stop()  # a leaves: b takes the rest at its next tick
        assert live_a == set()
        await b.tick()
        assert live_b == {0, 1, 2, 3, 4}
        await b.stop()
        assert {owner for owner, _ in (await store.shard_leases()).values()} == {None}
    finally:
        await store.close()


async def test_a_failed_subscribe_keeps_the_lease_and_is_retried(tmp_path: Path) -> None:
    settings = Settings(store_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}", shards=2)
    store = await Store.open(settings.store_url)
    live: set[int] = set()
    failures = {1}

    async def subscribe(shard: int) -> FakeSubscription:
        if shard in failures:
            failures.discard(shard)
            raise ConnectionError("channel closed")
        return FakeSubscription(shard, live)

    try:
        flaky = ShardBalancer(store, settings, subscribe, member_id="flaky")
        await flaky.tick()
        assert live == {0}
        assert (await store.shard_leases())[1][0] == "flaky"
        await flaky.tick()
        assert live == {0, 1}
    finally:
        await store.close()
