"""The plain values the store reads and writes; no behaviour, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class VersionConflict(Exception):
    """An optimistic version check failed; nothing of the batch was written."""


@dataclass(frozen=True)
class ClusterRow:
    """One cluster aggregate row.

    On write, ``version`` is the version the caller read: 0 inserts a new row (stored as 1),
    n updates a row currently at n (stored as n + 1). Timestamps are set by the store.
    """

    id: str
    state: str
    version: int
    doc: dict[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class MachineRow:
    """One machine row; same version rule as ``ClusterRow``."""

    id: str
    cluster_id: str
    role: str
    state: str
    version: int
    doc: dict[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OutboxMessage:
    """A message to publish after commit; ``seq`` is set by the store (keyword-only)."""

    seq: int | None = field(default=None, kw_only=True)
    message_id: str
    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]


@dataclass(frozen=True)
class HistoryEntry:
    """A transition (or ignored trigger) of a cluster or machine; ``at`` defaults to now."""

    cluster_id: str
    machine_id: str | None
    from_state: str
    to_state: str
    trigger: str
    message_id: str
    ignored: bool = False
    note: str = ""
    at: datetime | None = None


@dataclass
class Step:
    """Everything one consumed message changes, committed atomically with its inbox record.

    After ``Store.apply`` the ``outbox`` list of an applied step is replaced by copies whose
    ``seq`` is set, so the caller can publish them and ``mark_sent`` their seqs.
    """

    consumer: str
    message_id: str
    clusters: list[ClusterRow] = field(default_factory=list)
    machines: list[MachineRow] = field(default_factory=list)
    deleted_machine_ids: list[str] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
