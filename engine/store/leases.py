"""Engine membership and shard leases as plain functions of a Connection (run by a Backend).

Each function runs in one transaction. Claims are conditional UPDATEs checked by rowcount, so
two replicas racing for one shard cannot both win: SQLite serialises writers (BEGIN
IMMEDIATE), and PostgreSQL re-checks the WHERE clause of a row another transaction just
updated before applying its own update.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, or_, select, update

from engine.store.batch_sql import dialect_insert
from engine.store.queries import _utc
from engine.store.schema import engine_members, shard_leases


def heartbeat(conn: Connection, member_id: str, now: datetime) -> None:
    stmt = dialect_insert(conn, engine_members).values(member_id=member_id, heartbeat_at=now)
    upsert = stmt.on_conflict_do_update(index_elements=["member_id"], set_={"heartbeat_at": now})
    conn.execute(upsert)


def live_members(conn: Connection, since: datetime) -> list[str]:
    query = (
        select(engine_members.c.member_id)
        .where(engine_members.c.heartbeat_at >= since)
        .order_by(engine_members.c.member_id)
    )
    return list(conn.execute(query).scalars())


def claim_shards(
    conn: Connection, member_id: str, want: int, now: datetime, ttl: timedelta, shards: int
) -> set[int]:
    """Renew every lease of ``member_id``, then take free or expired shards up to ``want``."""
    expires = now + ttl
    mine = shard_leases.c.owner == member_id
    conn.execute(update(shard_leases).where(mine).values(expires_at=expires))
    owned = set(conn.execute(select(shard_leases.c.shard).where(mine)).scalars())
    if len(owned) >= want:
        return owned
    _ensure_rows(conn, shards)
    free = or_(shard_leases.c.owner.is_(None), shard_leases.c.expires_at <= now)
    query = select(shard_leases.c.shard).where(free, shard_leases.c.shard < shards)
    for shard in conn.execute(query.order_by(shard_leases.c.shard)).scalars().all():
        if len(owned) >= want:
            break
        take = update(shard_leases).where(shard_leases.c.shard == shard, free)
        if conn.execute(take.values(owner=member_id, expires_at=expires)).rowcount == 1:
            owned.add(shard)
    return owned


def release_shards(conn: Connection, member_id: str, shards: Sequence[int]) -> None:
    stmt = update(shard_leases).where(
        shard_leases.c.owner == member_id, shard_leases.c.shard.in_(list(shards))
    )
    conn.execute(stmt.values(owner=None, expires_at=None))


def leave(conn: Connection, member_id: str) -> None:
    """Release every lease of the member and forget it, so the others rebalance at once."""
    stmt = update(shard_leases).where(shard_leases.c.owner == member_id)
    conn.execute(stmt.values(owner=None, expires_at=None))
    conn.execute(delete(engine_members).where(engine_members.c.member_id == member_id))


def forget_members(conn: Connection, before: datetime) -> int:
    """Drop members silent since ``before`` (crashed replicas); returns how many."""
    stmt = delete(engine_members).where(engine_members.c.heartbeat_at < before)
    return int(conn.execute(stmt).rowcount)


def leases(conn: Connection) -> dict[int, tuple[str | None, datetime | None]]:
    """Every lease row: shard -> (owner, expires_at); for operators and tests."""
    rows = conn.execute(select(shard_leases).order_by(shard_leases.c.shard))
    return {
        row.shard: (row.owner, _utc(row.expires_at) if row.expires_at else None) for row in rows
    }


def _ensure_rows(conn: Connection, shards: int) -> None:
    """One row per shard, so that every claim is a conditional UPDATE of an existing row."""
    counted = select(func.count()).where(shard_leases.c.shard < shards)
    count = conn.execute(counted).scalar_one()
    if count < shards:
        rows = [{"shard": k, "owner": None, "expires_at": None} for k in range(shards)]
        conn.execute(dialect_insert(conn, shard_leases).values(rows).on_conflict_do_nothing())
