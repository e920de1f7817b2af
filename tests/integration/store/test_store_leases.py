"""The shard lease contract (membership, claim, release), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from engine.store import Store

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


async def test_live_members_are_those_with_a_recent_heartbeat(store: Store) -> None:
    await store.heartbeat("a", T0)
    await store.heartbeat("b", T0 - timedelta(minutes=5))
    await store.heartbeat("b", T0 + timedelta(seconds=1))  # an upsert, not a second row
    await store.heartbeat("c", T0 - timedelta(minutes=5))
    assert await store.live_members(T0 - TTL) == ["a", "b"]
    assert await store.forget_members(T0 - TTL) == 1
    assert await store.live_members(T0 - timedelta(hours=1)) == ["a", "b"]


async def test_claims_take_free_shards_up_to_want_and_renew_own(store: Store) -> None:
    assert await store.claim_shards("a", 2, T0, TTL, shards=4) == {0, 1}
    assert await store.claim_shards("b", 4, T0, TTL, shards=4) == {2, 3}
    later = T0 + timedelta(seconds=10)
    assert await store.claim_shards("a", 1, later, TTL, shards=4) == {0, 1}  # keeps both
    leases = await store.shard_leases()
    assert leases[0] == ("a", later + TTL)
    assert leases[2] == ("b", T0 + TTL)


async def test_expired_leases_move_to_a_claimer_and_unexpired_ones_do_not(store: Store) -> None:
    await store.claim_shards("a", 4, T0, TTL, shards=4)
    assert await store.claim_shards("b", 2, T0 + TTL - timedelta(seconds=1), TTL, shards=4) == set()
    assert await store.claim_shards("b", 2, T0 + TTL, TTL, shards=4) == {0, 1}
    # "a" comes back late: it keeps only what nobody took meanwhile.
    assert await store.claim_shards("a", 4, T0 + TTL, TTL, shards=4) == {2, 3}


async def test_release_frees_only_the_members_own_shards(store: Store) -> None:
    await store.claim_shards("a", 2, T0, TTL, shards=4)
    await store.claim_shards("b", 2, T0, TTL, shards=4)
    await store.release_shards("a", [1, 2])  # 2 is b's: untouched
    await store.release_shards("a", [])
    leases = await store.shard_leases()
    assert leases[1] == (None, None)
    assert leases[2][0] == "b"
    assert await store.claim_shards("c", 1, T0, TTL, shards=4) == {1}


async def test_leave_frees_every_lease_and_the_membership(store: Store) -> None:
    await store.heartbeat("a", T0)
    await store.claim_shards("a", 3, T0, TTL, shards=3)
    await store.leave("a")
    assert await store.live_members(T0 - TTL) == []
    assert {owner for owner, _ in (await store.shard_leases()).values()} == {None}


async def test_a_larger_shard_count_adds_rows_and_a_smaller_one_ignores_extra(
    store: Store,
) -> None:
    assert await store.claim_shards("a", 2, T0, TTL, shards=2) == {0, 1}
    assert await store.claim_shards("b", 8, T0, TTL, shards=6) == {2, 3, 4, 5}
    await store.release_shards("b", [4, 5])
    assert await store.claim_shards("c", 8, T0, TTL, shards=4) == set()


async def test_concurrent_claimers_never_share_a_shard(store_url: str) -> None:
    stores = [await Store.open(store_url, migrate=i == 0) for i in range(4)]
    try:
        results = await asyncio.gather(
            *(s.claim_shards(f"m{i}", 3, T0, TTL, shards=8) for i, s in enumerate(stores))
        )
    finally:
        for s in stores:
            await s.close()
    claimed = [shard for owned in results for shard in owned]
    assert len(claimed) == len(set(claimed)) == 8
