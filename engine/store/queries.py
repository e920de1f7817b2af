"""The store's cold-path operations as plain functions of a Connection (run by a Backend)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.engine import Row

from engine.store.batch_sql import dialect_insert, statements_for
from engine.store.rows import ClusterRow, HistoryEntry, MachineRow, OutboxMessage
from engine.store.schema import clusters, history, inbox, machines, outbox, secrets


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load(conn: Connection, cluster_id: str) -> tuple[ClusterRow, list[MachineRow]] | None:
    found = conn.execute(select(clusters).where(clusters.c.id == cluster_id)).first()
    if found is None:
        return None
    query = select(machines).where(machines.c.cluster_id == cluster_id).order_by(machines.c.id)
    return _cluster(found), [_machine(row) for row in conn.execute(query)]


def load_many(
    conn: Connection, cluster_ids: Sequence[str]
) -> dict[str, tuple[ClusterRow, list[MachineRow]]]:
    """``load`` for several clusters in one transaction; absent ones are left out."""
    return {cid: found for cid in cluster_ids if (found := load(conn, cid)) is not None}


def list_clusters(conn: Connection) -> list[ClusterRow]:
    return [_cluster(row) for row in conn.execute(select(clusters).order_by(clusters.c.id))]


def unsent_outbox(
    conn: Connection, limit: int, created_before: datetime | None = None
) -> list[OutboxMessage]:
    query = select(outbox).where(outbox.c.sent_at.is_(None))
    if created_before is not None:
        query = query.where(outbox.c.created_at < created_before)
    query = query.order_by(outbox.c.seq).limit(limit)
    return [_outbox(row) for row in conn.execute(query)]


def metric_counts(
    conn: Connection,
) -> tuple[dict[str, int], dict[str, int], int, datetime | None]:
    """Clusters and machines by state, unsent outbox rows and the oldest one's time."""
    by_cluster = select(clusters.c.state, func.count()).group_by(clusters.c.state)
    by_machine = select(machines.c.state, func.count()).group_by(machines.c.state)
    lag = select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
    unsent, oldest = conn.execute(lag).one()
    return (
        {state: n for state, n in conn.execute(by_cluster)},
        {state: n for state, n in conn.execute(by_machine)},
        int(unsent),
        _utc(oldest) if oldest is not None else None,
    )


def mark_sent(conn: Connection, seqs: Sequence[int], now: datetime) -> None:
    statements_for(conn).mark_sent(seqs, now)


def history_of(conn: Connection, cluster_id: str) -> list[HistoryEntry]:
    query = select(history).where(history.c.cluster_id == cluster_id).order_by(history.c.seq)
    return [_history(row) for row in conn.execute(query)]


def put_secret(conn: Connection, values: dict[str, Any]) -> bool:
    stmt = dialect_insert(conn, secrets).values(values).on_conflict_do_nothing()
    return bool(conn.execute(stmt).rowcount == 1)


def get_secret(conn: Connection, cluster_id: str, name: str) -> tuple[str, bytes, bytes] | None:
    query = select(secrets.c.key_id, secrets.c.nonce, secrets.c.ciphertext).where(
        secrets.c.cluster_id == cluster_id, secrets.c.name == name
    )
    found = conn.execute(query).first()
    if found is None:
        return None
    return found.key_id, bytes(found.nonce), bytes(found.ciphertext)


def delete_secrets(conn: Connection, cluster_id: str) -> int:
    return int(conn.execute(delete(secrets).where(secrets.c.cluster_id == cluster_id)).rowcount)


def purge_inbox(conn: Connection, cutoff: datetime) -> int:
    return int(conn.execute(delete(inbox).where(inbox.c.received_at < cutoff)).rowcount)


def purge_outbox(conn: Connection, cutoff: datetime) -> int:
    stmt = delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff)
    return int(conn.execute(stmt).rowcount)


def _cluster(row: Row[Any]) -> ClusterRow:
    return ClusterRow(
        id=row.id,
        state=row.state,
        version=row.version,
        doc=row.doc,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _machine(row: Row[Any]) -> MachineRow:
    return MachineRow(
        id=row.id,
        cluster_id=row.cluster_id,
        role=row.role,
        state=row.state,
        version=row.version,
        doc=row.doc,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _outbox(row: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        seq=row.seq,
        message_id=row.message_id,
        exchange=row.exchange,
        routing_key=row.routing_key,
        body=bytes(row.body),
        properties=row.properties,
    )


def _history(row: Row[Any]) -> HistoryEntry:
    return HistoryEntry(
        cluster_id=row.cluster_id,
        machine_id=row.machine_id,
        from_state=row.from_state,
        to_state=row.to_state,
        trigger=row.trigger,
        message_id=row.message_id,
        ignored=row.ignored,
        note=row.note,
        at=_utc(row.at),
    )
