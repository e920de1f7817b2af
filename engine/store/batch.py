"""The hot path: write a batch of steps in one transaction with a handful of executemany calls.

Per batch, whatever its size: claim the inbox rows, lock and read the versions of the rows
touched, check every step's expected versions in order (in Python), then write only the final
image of each row, the outbox and the history. The statement count is constant, so a batch of
100 steps costs little more than a batch of 1 (SQLAlchemy's per-statement overhead dominates
small transactions). The code is synchronous: ``connect.Backend`` runs it in one thread hop
(SQLite) or in a greenlet over asyncpg (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from engine.store.rows import ClusterRow, MachineRow, Step, VersionConflict
from engine.store.schema import clusters, history, inbox, machines, outbox

_UNIQUE_VIOLATION = "23505"  # PostgreSQL SQLSTATE


@dataclass
class _Plan:
    """Final image of every row the batch touches, after checking versions step by step."""

    existing: dict[str, int]
    current: dict[str, int | None]
    final: dict[str, tuple[ClusterRow | MachineRow, int]] = field(default_factory=dict)
    recreated: set[str] = field(default_factory=set)

    def advance(self, kind: str, row: ClusterRow | MachineRow) -> None:
        """Check ``row.version`` against the running version and move it on by one."""
        have = self.current.get(row.id)
        if row.version == 0 and have is not None:
            raise VersionConflict(f"{kind} {row.id!r} already exists (version {have})")
        if row.version != 0 and have != row.version:
            raise VersionConflict(f"{kind} {row.id!r}: expected version {row.version}, is {have}")
        if have is None and row.id in self.existing:
            self.recreated.add(row.id)  # deleted earlier in this batch, now inserted again
        self.current[row.id] = row.version + 1
        self.final[row.id] = (row, row.version + 1)

    def remove(self, row_id: str) -> None:
        self.current[row_id] = None
        self.final.pop(row_id, None)


def apply_batch(
    conn: Connection, steps: Sequence[Step], now: datetime, sent: Sequence[int] = ()
) -> tuple[list[bool], list[list[int]]]:
    """Write ``steps`` on ``conn`` (inside its transaction); mark the outbox rows ``sent``.

    Returns, per step, whether it was applied (False: duplicate message) and the outbox seqs
    assigned to its messages, in order.
    """
    if sent:
        mark_sent(conn, sent, now)
    applied = _claim_inbox(conn, steps, now)
    live = [step for step, ok in zip(steps, applied, strict=True) if ok]
    cluster_plan = _plan(conn, clusters, "cluster", live, lambda s: s.clusters)
    machine_plan = _plan(conn, machines, "machine", live, lambda s: s.machines)
    _write_rows(conn, clusters, cluster_plan, now, _cluster_values)
    _write_rows(conn, machines, machine_plan, now, _machine_values)
    seqs = _write_outbox(conn, live, now)
    _write_history(conn, live, now)
    it = iter(seqs)
    return applied, [next(it) if ok else [] for ok in applied]


def dialect_insert(conn: Connection, table: Table) -> Any:
    """INSERT with ON CONFLICT DO NOTHING support, for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _claim_inbox(conn: Connection, steps: Sequence[Step], now: datetime) -> list[bool]:
    """Insert the inbox keys; a key already there (or repeated in the batch) is a duplicate."""
    firsts: dict[tuple[str, str], int] = {}
    for index, step in enumerate(steps):
        firsts.setdefault((step.consumer, step.message_id), index)
    stmt = (
        dialect_insert(conn, inbox)
        .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
        .returning(inbox.c.consumer, inbox.c.message_id)
    )
    params = [{"consumer": c, "message_id": m, "received_at": now} for c, m in firsts]
    claimed = {(r.consumer, r.message_id) for r in conn.execute(stmt, params)}
    return [firsts.get(key) == i and key in claimed for i, key in enumerate(_keys(steps))]


def _keys(steps: Iterable[Step]) -> Iterable[tuple[str, str]]:
    return ((step.consumer, step.message_id) for step in steps)


def _plan(
    conn: Connection,
    table: Table,
    kind: str,
    steps: Sequence[Step],
    rows_of: Any,
) -> _Plan:
    """Lock the touched rows, then replay every step's version checks in batch order."""
    ids = {row.id for step in steps for row in rows_of(step)}
    if table is machines:
        ids.update(mid for step in steps for mid in step.deleted_machine_ids)
    existing: dict[str, int] = {}
    if ids:
        query = (
            select(table.c.id, table.c.version)
            .where(table.c.id.in_(sorted(ids)))
            .order_by(table.c.id)  # lock in a stable order: no deadlock between batches
            .with_for_update()  # ignored by SQLite, which already holds the write lock
        )
        existing = {row.id: row.version for row in conn.execute(query)}
    plan = _Plan(existing=existing, current=dict(existing))
    for step in steps:
        for row in rows_of(step):
            plan.advance(kind, row)
        if table is machines:
            for machine_id in step.deleted_machine_ids:
                plan.remove(machine_id)
    return plan


def _cluster_values(row: ClusterRow | MachineRow) -> dict[str, Any]:
    return {"state": row.state, "doc": row.doc}


def _machine_values(row: ClusterRow | MachineRow) -> dict[str, Any]:
    assert isinstance(row, MachineRow)
    return {"state": row.state, "doc": row.doc, "cluster_id": row.cluster_id, "role": row.role}


def _write_rows(conn: Connection, table: Table, plan: _Plan, now: datetime, values: Any) -> None:
    """Delete, update and insert so that the table holds the plan's final images."""
    gone = [i for i in plan.existing if plan.current.get(i) is None or i in plan.recreated]
    if gone:
        conn.execute(delete(table).where(table.c.id.in_(gone)))
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for row_id, (row, version) in plan.final.items():
        base = {**values(row), "version": version, "updated_at": now}
        if row_id in plan.existing and row_id not in plan.recreated:
            updates.append({"b_id": row_id, **base})
        else:
            inserts.append({"id": row_id, "created_at": now, **base})
    if updates:
        conn.execute(update(table).where(table.c.id == bindparam("b_id")), updates)
    if inserts:
        try:
            conn.execute(insert(table), inserts)
        except IntegrityError as exc:
            # PostgreSQL only: another writer inserted the same id after our read.
            if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
                raise VersionConflict(f"{table.name}: concurrent insert") from exc
            raise


def _write_outbox(conn: Connection, steps: Sequence[Step], now: datetime) -> list[list[int]]:
    """Insert the outbox rows in batch order and return each step's seqs."""
    params = [
        {
            "message_id": m.message_id,
            "exchange": m.exchange,
            "routing_key": m.routing_key,
            "body": m.body,
            "properties": m.properties,
            "created_at": now,
        }
        for step in steps
        for m in step.outbox
    ]
    seqs: list[int] = []
    if params:
        stmt = insert(outbox).returning(outbox.c.seq, sort_by_parameter_order=True)
        seqs = [row.seq for row in conn.execute(stmt, params)]
    it = iter(seqs)
    return [[next(it) for _ in step.outbox] for step in steps]


def _write_history(conn: Connection, steps: Sequence[Step], now: datetime) -> None:
    params = [
        {
            "cluster_id": h.cluster_id,
            "machine_id": h.machine_id,
            "from_state": h.from_state,
            "to_state": h.to_state,
            "trigger": h.trigger,
            "message_id": h.message_id,
            "ignored": h.ignored,
            "note": h.note,
            "at": h.at or now,
        }
        for step in steps
        for h in step.history
    ]
    if params:
        conn.execute(insert(history), params)


def mark_sent(conn: Connection, seqs: Sequence[int], now: datetime) -> None:
    stmt = update(outbox).where(outbox.c.seq.in_(list(seqs)), outbox.c.sent_at.is_(None))
    conn.execute(stmt.values(sent_at=now))
