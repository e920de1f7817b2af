"""The state store: cluster and machine aggregates, inbox, outbox, history, encrypted secrets.

SQLite (default) or PostgreSQL through SQLAlchemy async Core; the schema is migrated with the
alembic scripts shipped in ``engine.store.migrations``. ``Store.apply`` is the hot path: a
batch of steps (inbox + state + outbox + history) in one transaction.
"""

from engine.store.crypto import SecretBox, UnknownKey, load_secret_box
from engine.store.rows import (
    ClusterRow,
    HistoryEntry,
    MachineRow,
    OutboxMessage,
    Step,
    VersionConflict,
)
from engine.store.store import Store

__all__ = [
    "ClusterRow",
    "HistoryEntry",
    "MachineRow",
    "OutboxMessage",
    "SecretBox",
    "Step",
    "Store",
    "UnknownKey",
    "VersionConflict",
    "load_secret_box",
]
