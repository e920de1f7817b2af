"""How the store reaches its database: one synchronous Core code path, two ways to run it.

Every store operation is a plain function ``fn(conn: Connection, *args)`` run inside one
transaction by a backend:

- PostgreSQL: an async engine over asyncpg; ``run_sync`` executes the function in a greenlet.
- SQLite: a sync engine over the stdlib sqlite3 driver. A write runs on the event loop's own
  thread when the database's write lock is free, else in a small thread pool (as reads do),
  so a whole transaction costs at most one thread hop. (aiosqlite hops threads for every
  DBAPI call: ~50 hops and ~6 ms per transaction under SQLAlchemy, which capped single-step
  writes at ~150/s.)
  Writes are serialised in-process and start with BEGIN IMMEDIATE; reads use a deferred BEGIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_INTERVAL_S = 0.5
_READ_ONLY = "clusterbus_read_only"  # execution option: SQLite opens a deferred BEGIN
_NO_WAIT = "clusterbus_no_wait"  # execution option: BEGIN IMMEDIATE fails at once if locked
_BUSY_TIMEOUT = "clusterbus_busy_timeout_ms"  # in a pooled connection's info: its current one
_PG_MIGRATION_LOCK = 0x636C_7573_7465_72  # any constant: serialises concurrent migrators


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# Every applied message stores its aggregate's document and its outbox rows as JSON: with the
# stdlib's json that was ~5 % of the engine's CPU per message, with orjson a fifth of it.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


class Backend(Protocol):
    """Runs ``fn(conn, *args)`` in one transaction and returns its result."""

    async def write(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def dispose(self) -> None: ...


def open_backend(url: str) -> Backend:
    """The backend for a ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SqliteBackend(parsed.set(drivername="sqlite+pysqlite").render_as_string(False))
    return PostgresBackend(create_async_engine(url, pool_size=5, max_overflow=5, **_JSON_CODEC))


class PostgresBackend:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.write(fn, *args)

    async def dispose(self) -> None:
        await self.engine.dispose()


class SqliteBackend:
    def __init__(self, url: str, threads: int = 3) -> None:
        in_memory = make_url(url).database in (None, "", ":memory:")
        self._wal = not in_memory  # in memory: no WAL, and no second thread on its connection
        if in_memory:
            # One shared connection, or every pooled connection would see its own empty database.
            threads = 1
            self.engine = create_sync_engine(
                url,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                **_JSON_CODEC,
            )
        else:
            self.engine = create_sync_engine(url, pool_size=threads, max_overflow=0, **_JSON_CODEC)
        _install_sqlite_hooks(self.engine)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="clusterbus-store")
        # One writer at a time per process: SQLite allows one anyway, and queueing here is
        # cheaper than SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._write_lock = asyncio.Lock()
        self._written = False  # since the last checkpoint
        self._checkpointer: asyncio.Task[None] | None = None

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the write transaction on the event loop's thread if the write lock is free at
        once, else wait for it in a pool thread.

        A write costs the engine's loop a few milliseconds of CPU either way (its Python half
        holds the GIL); run in a thread it also costs a thread hop and GIL hand-overs that
        stall the loop. Measured with benchmarks/engine_throughput.py: about 20 % more
        messages per second inline. Waiting for another process's lock must not block the
        loop, hence the fallback.
        """
        self._written = True
        if self._checkpointer is None and self._wal:
            self._checkpointer = asyncio.create_task(self._checkpoints(), name="sqlite-wal")
        async with self._write_lock:
            try:
                return self._transaction(False, fn, args, wait=False)
            except OperationalError as exc:
                # Busy anywhere in it: the inline transaction was rolled back; run it again.
                code = getattr(exc.orig, "sqlite_errorcode", None)
                if code is None or code & 0xFF != sqlite3.SQLITE_BUSY:  # extended codes too
                    raise
            return await self._run(False, fn, args)

    async def _checkpoints(self) -> None:
        """Copy the WAL into the database file from a pool thread, after writes.

        A checkpoint writes and syncs the database file: milliseconds that SQLite's automatic
        checkpoint (off, see _install_sqlite_hooks) would spend inside a commit, on the loop.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if self._written:
                self._written = False
                try:
                    await loop.run_in_executor(self._pool, self._checkpoint)
                except Exception as exc:  # the WAL grows a little longer; next time
                    log.warning("WAL checkpoint failed", extra={"error": str(exc)})

    def _checkpoint(self) -> None:
        raw = self.engine.raw_connection()  # no transaction: a checkpoint cannot run in one
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            raw.close()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(True, fn, args)

    async def _run(self, read_only: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._transaction, read_only, fn, args)

    def _transaction(
        self, read_only: bool, fn: Callable[..., T], args: tuple[Any, ...], wait: bool = True
    ) -> T:
        with self.engine.connect() as conn:
            conn.execution_options(**{_READ_ONLY: read_only, _NO_WAIT: not wait})
            with conn.begin():
                return fn(conn, *args)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            if self._written:
                await asyncio.get_running_loop().run_in_executor(self._pool, self._checkpoint)
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        self.engine.dispose()


def _install_sqlite_hooks(engine: Engine) -> None:
    """WAL + synchronous=NORMAL, and our own BEGIN so that writers start with BEGIN IMMEDIATE.

    A deferred BEGIN takes the write lock only at the first write: two connections that both
    read first then cannot upgrade, and one fails with "database is locked" whatever the busy
    timeout. BEGIN IMMEDIATE takes the lock up front, so writers queue instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        record.info[_BUSY_TIMEOUT] = SQLITE_BUSY_TIMEOUT_MS
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint = 0")  # SqliteBackend._checkpoints does it
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        read_only, no_wait = options.get(_READ_ONLY, False), options.get(_NO_WAIT, False)
        # no_wait: fail with SQLITE_BUSY at once instead of sleeping in the busy handler (the
        # caller then retries the whole transaction where waiting is harmless).
        _set_busy_timeout(conn, 0 if no_wait and not read_only else SQLITE_BUSY_TIMEOUT_MS)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _set_busy_timeout(conn: Connection, ms: int) -> None:
    """Per database connection, and only when it changes: a PRAGMA per transaction costs."""
    info = conn.connection.info
    if info.get(_BUSY_TIMEOUT) != ms:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
        info[_BUSY_TIMEOUT] = ms


def _ensure_wal(cursor: Any, *, within_s: float = 10.0) -> None:
    """Switch the file to WAL (persistent, so usually already done), retrying while locked.

    Changing the journal mode needs an exclusive lock and does not wait on busy_timeout: when
    several processes open a new database file at once, all but one get "database is locked".
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def upgrade(conn: Connection) -> None:
    """Upgrade the schema to head inside the caller's transaction; a no-op when at head."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
