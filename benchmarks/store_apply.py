"""Measure ``Store.apply`` throughput for batches of 1, 20 and 100 steps on SQLite and PostgreSQL.

Each step is what one engine transition writes: 1 inbox row, 1 cluster update (version
checked), 1 outbox row (~400 bytes) and 1 history row.

    .venv/bin/python benchmarks/store_apply.py                 # both backends
    .venv/bin/python benchmarks/store_apply.py --steps 3000 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs upstream
from sqlalchemy import Connection

from engine.store import ClusterRow, HistoryEntry, OutboxMessage, Step, Store

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
CLUSTERS = 200
BODY = b"x" * 400


def make_step(cluster: str, version: int) -> Step:
    message_id = uuid.uuid4().hex
    return Step(
        consumer="engine-0",
        message_id=message_id,
        clusters=[ClusterRow(cluster, "provisioning_network", version, {"spec": {"n": version}})],
        outbox=[
            OutboxMessage(
                message_id=uuid.uuid4().hex,
                exchange="clusterbus.tasks",
                routing_key="network.ensure",
                body=BODY,
                properties={"headers": {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"}},
            )
        ],
        history=[HistoryEntry(cluster, None, "accepted", "provisioning_network", "t", message_id)],
    )


async def run(store: Store, steps: int, batch: int, prefix: str = "bench") -> float:
    """Steps per second for ``steps`` steps applied ``batch`` at a time."""
    versions = {f"{prefix}-{i}": 0 for i in range(CLUSTERS)}
    await store.apply([make_step(cid, 0) for cid in versions])
    versions = dict.fromkeys(versions, 1)
    names = list(versions)
    start = time.perf_counter()
    done = 0
    while done < steps:
        chunk = []
        for i in range(done, min(done + batch, steps)):
            cid = names[i % CLUSTERS]
            chunk.append(make_step(cid, versions[cid]))
            versions[cid] += 1
        await store.apply(chunk)
        done += len(chunk)
    return steps / (time.perf_counter() - start)


async def bench(url: str, steps: int) -> dict[int, float]:
    results = {}
    for batch in (1, 20, 100):
        store = await Store.open(url)
        try:
            # A short warm-up lets SQLAlchemy cache its compiled statements.
            await run(store, 50, batch, prefix="warm")
            results[batch] = await run(store, steps if batch > 1 else steps // 4, batch)
        finally:
            await store.close()
        await reset(url)
    return results


async def reset(url: str) -> None:
    """Empty the tables between runs so each batch size starts alike."""
    store = await Store.open(url)
    await store._backend.write(_empty_tables)  # benchmark-only peek behind the API
    await store.close()


def _empty_tables(conn: Connection) -> None:
    for table in ("history", "outbox", "inbox", "machines", "clusters"):
        conn.exec_driver_sql(f"DELETE FROM {table}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print("| backend | batch 1 steps/s | batch 20 steps/s | batch 100 steps/s |")
    print("|---|---|---|---|")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            print_row("SQLite (WAL, NORMAL)", await bench(url, args.steps))
    if args.backend in ("postgres", "both"):
        name = f"clusterbus_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            print_row("PostgreSQL 15", await bench(url, args.steps))
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


def print_row(backend: str, results: dict[int, float]) -> None:
    print(f"| {backend} | " + " | ".join(f"{results[b]:,.0f}" for b in (1, 20, 100)) + " |")


if __name__ == "__main__":
    asyncio.run(main())
