"""Several Store objects writing one database at once: no "database is locked", no lost update."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from engine.store import ClusterRow, Step, Store, VersionConflict
from support.waiting import eventually

WRITERS = 3
STEPS_EACH = 60
INCREMENTS_EACH = 15


async def own_clusters(store: Store, writer: int) -> None:
    """Single-step batches on clusters no one else touches (the sharded engine's normal case)."""
    for i in range(STEPS_EACH):
        cid = f"w{writer}-c{i % 5}"
        version = i // 5
        row = ClusterRow(cid, f"s{version}", version, {"i": i})
        assert await store.apply([Step(f"writer-{writer}", f"m{i}", clusters=[row])]) == [True]


async def increment_shared(store: Store, writer: int) -> int:
    """Read-modify-write on one shared cluster, retrying on conflict; returns conflicts seen."""
    conflicts = 0
    for i in range(INCREMENTS_EACH):
        while True:
            loaded = await store.load("shared")
            assert loaded is not None
            row = loaded[0]
            doc = {"count": row.doc["count"] + 1}
            bumped = ClusterRow("shared", "ready", row.version, doc)
            try:
                await store.apply([Step(f"inc-{writer}", f"i{i}", clusters=[bumped])])
                break
            except VersionConflict:
                conflicts += 1
    return conflicts


async def test_concurrent_writers_do_not_lock_or_lose_updates(store_url: str) -> None:
    stores = [await Store.open(store_url) for _ in range(WRITERS)]
    try:
        seed = ClusterRow("shared", "ready", 0, {"count": 0})
        await stores[0].apply([Step("seed", "seed", clusters=[seed])])
        jobs = [own_clusters(s, w) for w, s in enumerate(stores)]
        increments = [increment_shared(s, w) for w, s in enumerate(stores)]
        await asyncio.wait_for(asyncio.gather(*jobs, *increments), timeout=60)
        shared = await stores[1].load("shared")
        assert shared is not None
        assert shared[0].doc == {"count": WRITERS * INCREMENTS_EACH}
        assert shared[0].version == 1 + WRITERS * INCREMENTS_EACH
        clusters = await stores[2].list_clusters()
        assert len(clusters) == 1 + WRITERS * 5
        assert {c.version for c in clusters if c.id != "shared"} == {STEPS_EACH // 5}
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_duplicates_apply_exactly_once(store_url: str) -> None:
    """The same message delivered to two engines at once is applied by exactly one of them."""
    stores = [await Store.open(store_url) for _ in range(2)]
    try:
        for i in range(20):
            results = await asyncio.gather(
                *(
                    s.apply(
                        [Step("engine", f"dup-{i}", clusters=[ClusterRow(f"c{i}", "a", 0, {})])]
                    )
                    for s in stores
                ),
                return_exceptions=True,
            )
            # One applies; the other sees a duplicate or (PostgreSQL) loses the insert race.
            flat = [r[0] if isinstance(r, list) else r for r in results]
            assert flat.count(True) == 1, flat
            assert all(r is True or r is False or isinstance(r, VersionConflict) for r in flat)
        assert len(await stores[0].list_clusters()) == 20
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    """Engines starting together on a fresh database: one migrates, the others find it done.

    Migrating reads the version table before writing, the pattern that fails with "database is
    locked" on SQLite unless write transactions start with BEGIN IMMEDIATE.
    """
    stores = await asyncio.wait_for(
        asyncio.gather(*(Store.open(store_url) for _ in range(WRITERS))), timeout=60
    )
    try:
        for i, store in enumerate(stores):
            row = ClusterRow(f"c{i}", "accepted", 0, {})
            assert await store.apply([Step("engine", f"m{i}", clusters=[row])]) == [True]
        assert len(await stores[0].list_clusters()) == WRITERS
    finally:
        for store in stores:
            await store.close()


async def test_sqlite_write_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """Writes run inline while the write lock is free; when another connection holds it, the
    write waits in a thread: the event loop keeps running and the write lands after release."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    store = await Store.open(url)
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        row = ClusterRow("inline", "accepted", 0, {})
        assert await store.apply([Step("engine", "m-inline", clusters=[row])]) == [True]
        other.execute("BEGIN IMMEDIATE")  # what another engine process's write looks like
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        row = ClusterRow("waited", "accepted", 0, {})
        write = asyncio.create_task(store.apply([Step("engine", "m-waited", clusters=[row])]))

        async def loop_ticked() -> bool:
            return ticks >= 20

        await eventually(loop_ticked, within=10, what="the event loop to keep running")
        assert not write.done()  # still waiting for the lock, and the loop is alive
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, timeout=10) == [True]
        ticker.cancel()
        assert {c.id for c in await store.list_clusters()} == {"inline", "waited"}
    finally:
        other.close()
        await store.close()


async def test_sqlite_wal_is_checkpointed_off_the_loop(tmp_path: Path) -> None:
    """SQLite's own checkpoint is off (it would run inside a commit, on the event loop); the
    backend's checkpointer copies the WAL into the database file soon after writes."""
    db = tmp_path / "store.db"
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        big = ClusterRow("big", "accepted", 0, {"blob": "x" * 300_000})
        written = db.stat().st_size
        assert await store.apply([Step("engine", "m-big", clusters=[big])]) == [True]

        async def copied_into_the_database_file() -> bool:
            return db.stat().st_size > written + 250_000

        await eventually(copied_into_the_database_file, within=10, what="a WAL checkpoint")
    finally:
        await store.close()
