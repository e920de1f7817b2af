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

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

from engine.store.batch_sql import Statements, statements_for
from engine.store.rows import ClusterRow, MachineRow, Step, VersionConflict
from engine.store.schema import clusters, history, machines

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
    conn: Connection, steps: Sequence[Step], now: datetime
) -> tuple[list[bool], list[list[int]]]:
    """Write ``steps`` on ``conn`` (inside its transaction).

    Returns, per step, whether it was applied (False: duplicate message) and the outbox seqs
    assigned to its messages, in order.
    """
    sql = statements_for(conn)
    applied = _claim_inbox(sql, steps, now)
    live = [step for step, ok in zip(steps, applied, strict=True) if ok]
    cluster_plan = _plan(sql, clusters, "cluster", live, lambda s: s.clusters)
    machine_plan = _plan(sql, machines, "machine", live, lambda s: s.machines)
    _write_rows(sql, clusters, cluster_plan, now, _cluster_values)
    _write_rows(sql, machines, machine_plan, now, _machine_values)
    seqs = _write_outbox(sql, live, now)
    _write_history(sql, live, now)
    it = iter(seqs)
    return applied, [next(it) if ok else [] for ok in applied]


def _claim_inbox(sql: Statements, steps: Sequence[Step], now: datetime) -> list[bool]:
    """Insert the inbox keys; a key already there (or repeated in the batch) is a duplicate."""
    firsts: dict[tuple[str, str], int] = {}
    for index, step in enumerate(steps):
        firsts.setdefault((step.consumer, step.message_id), index)
    claimed = sql.claim_inbox(list(firsts), now)
    return [firsts.get(key) == i and key in claimed for i, key in enumerate(_keys(steps))]


def _keys(steps: Iterable[Step]) -> Iterable[tuple[str, str]]:
    return ((step.consumer, step.message_id) for step in steps)


def _plan(
    sql: Statements,
    table: Table,
    kind: str,
    steps: Sequence[Step],
    rows_of: Any,
) -> _Plan:
    """Lock the touched rows, then replay every step's version checks in batch order."""
    ids = {row.id for step in steps for row in rows_of(step)}
    if table is machines:
        ids.update(mid for step in steps for mid in step.deleted_machine_ids)
    existing = sql.versions(table, list(ids)) if ids else {}
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


def _write_rows(sql: Statements, table: Table, plan: _Plan, now: datetime, values: Any) -> None:
    """Delete, update and insert so that the table holds the plan's final images."""
    gone = [i for i in plan.existing if plan.current.get(i) is None or i in plan.recreated]
    if gone:
        sql.delete(table, gone)
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for row_id, (row, version) in plan.final.items():
        base = {**values(row), "version": version, "updated_at": now}
        if row_id in plan.existing and row_id not in plan.recreated:
            updates.append({"id": row_id, **base})
        else:
            inserts.append({"id": row_id, "created_at": now, **base})
    if updates:
        sql.update(table, updates)
    if inserts:
        try:
            sql.insert(table, inserts)
        except IntegrityError as exc:
            # PostgreSQL only: another writer inserted the same id after our read.
            if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
                raise VersionConflict(f"{table.name}: concurrent insert") from exc
            raise


def _write_outbox(sql: Statements, steps: Sequence[Step], now: datetime) -> list[list[int]]:
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
    seqs = sql.insert_outbox(params) if params else []
    it = iter(seqs)
    return [[next(it) for _ in step.outbox] for step in steps]


def _write_history(sql: Statements, steps: Sequence[Step], now: datetime) -> None:
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
        sql.insert(history, params)
