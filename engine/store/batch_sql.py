"""The statements of the batch writer, in two dialects: SQLAlchemy Core, or SQLite's own SQL.

``engine.store.batch`` decides what a batch writes; an object from ``statements_for`` writes it.
PostgreSQL gets Core statements. On SQLite the same rows go to the driver as SQL text with
``?`` parameters, converted by the very bind processors Core would use (so what is stored is
identical and every Core query reads it back): Core's execution machinery around them cost
about half of a batch's time in the engine (measured with benchmarks/store_apply.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from engine.store.schema import inbox, outbox

Row = dict[str, Any]
_MAX_VARIABLES = 900  # per statement; SQLite's compile-time limit is 999 in old builds


class Statements(Protocol):
    def claim_inbox(self, keys: Sequence[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        """Insert the inbox keys that are new; returns those inserted."""
        ...

    def versions(self, table: Table, ids: Sequence[str]) -> dict[str, int]: ...

    def delete(self, table: Table, ids: Sequence[str]) -> None: ...

    def update(self, table: Table, rows: Sequence[Row]) -> None:
        """Rows keyed by column name, each with its ``id``; all with the same columns."""
        ...

    def insert(self, table: Table, rows: Sequence[Row]) -> None: ...

    def insert_outbox(self, rows: Sequence[Row]) -> list[int]:
        """The seqs assigned, in the order of ``rows``."""
        ...

    def mark_sent(self, seqs: Sequence[int], now: datetime) -> None: ...


def statements_for(conn: Connection) -> Statements:
    if conn.dialect.name == "sqlite":
        return SqliteStatements(conn)
    return CoreStatements(conn)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """INSERT with ON CONFLICT DO NOTHING support, for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class CoreStatements:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def claim_inbox(self, keys: Sequence[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        stmt = (
            dialect_insert(self._conn, inbox)
            .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
            .returning(inbox.c.consumer, inbox.c.message_id)
        )
        params = [{"consumer": c, "message_id": m, "received_at": now} for c, m in keys]
        return {(r.consumer, r.message_id) for r in self._conn.execute(stmt, params)}

    def versions(self, table: Table, ids: Sequence[str]) -> dict[str, int]:
        query = (
            select(table.c.id, table.c.version)
            .where(table.c.id.in_(sorted(ids)))
            .order_by(table.c.id)  # lock in a stable order: no deadlock between batches
            .with_for_update()
        )
        return {row.id: row.version for row in self._conn.execute(query)}

    def delete(self, table: Table, ids: Sequence[str]) -> None:
        self._conn.execute(delete(table).where(table.c.id.in_(ids)))

    def update(self, table: Table, rows: Sequence[Row]) -> None:
        params = [
            {**{k: v for k, v in row.items() if k != "id"}, "b_id": row["id"]} for row in rows
        ]
        self._conn.execute(update(table).where(table.c.id == bindparam("b_id")), params)

    def insert(self, table: Table, rows: Sequence[Row]) -> None:
        self._conn.execute(insert(table), list(rows))

    def insert_outbox(self, rows: Sequence[Row]) -> list[int]:
        stmt = insert(outbox).returning(outbox.c.seq, sort_by_parameter_order=True)
        return [row.seq for row in self._conn.execute(stmt, list(rows))]

    def mark_sent(self, seqs: Sequence[int], now: datetime) -> None:
        stmt = update(outbox).where(outbox.c.seq.in_(list(seqs)), outbox.c.sent_at.is_(None))
        self._conn.execute(stmt.values(sent_at=now))


class SqliteStatements:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._dialect = conn.dialect

    def claim_inbox(self, keys: Sequence[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        rows = [{"consumer": c, "message_id": m, "received_at": now} for c, m in keys]
        suffix = " ON CONFLICT (consumer, message_id) DO NOTHING RETURNING consumer, message_id"
        return {(r[0], r[1]) for r in self._insert_returning(inbox, rows, suffix)}

    def versions(self, table: Table, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(ids), _MAX_VARIABLES):
            sql = f"SELECT id, version FROM {table.name} WHERE id IN ({_marks(len(chunk))})"
            found.update((r[0], r[1]) for r in self._conn.exec_driver_sql(sql, tuple(chunk)))
        return found

    def delete(self, table: Table, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids), _MAX_VARIABLES):
            sql = f"DELETE FROM {table.name} WHERE id IN ({_marks(len(chunk))})"
            self._conn.exec_driver_sql(sql, tuple(chunk))

    def update(self, table: Table, rows: Sequence[Row]) -> None:
        columns = [c for c in rows[0] if c != "id"]
        convert = _converter(self._dialect, table, [*columns, "id"])
        sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        self._conn.exec_driver_sql(sql, [convert(row) for row in rows])

    def insert(self, table: Table, rows: Sequence[Row]) -> None:
        columns = list(rows[0])
        convert = _converter(self._dialect, table, columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({_marks(len(columns))})"
        self._conn.exec_driver_sql(sql, [convert(row) for row in rows])

    def insert_outbox(self, rows: Sequence[Row]) -> list[int]:
        # SQLite does not promise RETURNING in VALUES order; message ids are unique.
        seq_of = {
            r[1]: r[0] for r in self._insert_returning(outbox, rows, " RETURNING seq, message_id")
        }
        return [seq_of[row["message_id"]] for row in rows]

    def mark_sent(self, seqs: Sequence[int], now: datetime) -> None:
        sent_at = _converter(self._dialect, outbox, ["sent_at"])({"sent_at": now})
        for chunk in _chunks(list(seqs), _MAX_VARIABLES - 1):
            sql = (
                f"UPDATE outbox SET sent_at = ? WHERE seq IN ({_marks(len(chunk))})"
                " AND sent_at IS NULL"
            )
            self._conn.exec_driver_sql(sql, (*sent_at, *chunk))

    def _insert_returning(self, table: Table, rows: Sequence[Row], suffix: str) -> list[Any]:
        """One multi-row INSERT per chunk (executemany cannot return rows)."""
        columns = list(rows[0])
        convert = _converter(self._dialect, table, columns)
        values = f"({_marks(len(columns))})"
        returned: list[Any] = []
        for chunk in _chunks(list(rows), _MAX_VARIABLES // len(columns)):
            sql = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                + ", ".join([values] * len(chunk))
                + suffix
            )
            params = tuple(value for row in chunk for value in convert(row))
            returned.extend(self._conn.exec_driver_sql(sql, params).all())
        return returned


def _converter(
    dialect: Dialect, table: Table, columns: Sequence[str]
) -> Callable[[Row], tuple[Any, ...]]:
    """Row dict -> parameter tuple, each value through its column type's bind processor."""
    processors = [_processor(dialect, table, c) for c in columns]
    pairs = list(zip(columns, processors, strict=True))

    def convert(row: Row) -> tuple[Any, ...]:
        return tuple(p(row[c]) if p is not None else row[c] for c, p in pairs)

    return convert


def _processor(dialect: Dialect, table: Table, column: str) -> Callable[[Any], Any] | None:
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    last: list[Any] = [object(), None]

    def memoised(value: Any) -> Any:
        # A batch writes the same timestamp into every row: convert it once.
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return memoised


def _marks(n: int) -> str:
    return ", ".join(["?"] * n)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(size, 1))]
