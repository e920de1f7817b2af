"""Table definitions (SQLAlchemy Core); the migrations must produce exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
Doc = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
Seq = BigInteger().with_variant(Integer(), "sqlite")
Stamp = DateTime(timezone=True)

clusters = Table(
    "clusters",
    metadata,
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("doc", Doc, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
)

machines = Table(
    "machines",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "cluster_id",
        Text,
        ForeignKey("clusters.id", ondelete="CASCADE", name="fk_machines_cluster_id"),
        nullable=False,
    ),
    Column("role", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("doc", Doc, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Index("ix_machines_cluster_id", "cluster_id"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("received_at", Stamp, nullable=False),
    PrimaryKeyConstraint("consumer", "message_id", name="pk_inbox"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("message_id", Text, nullable=False, unique=True),
    Column("exchange", Text, nullable=False),
    Column("routing_key", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("properties", Doc, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("sent_at", Stamp, nullable=True),
)
# The relay scans only what is unsent, oldest first: a partial index keeps that scan tiny.
Index(
    "ix_outbox_unsent",
    outbox.c.seq,
    sqlite_where=outbox.c.sent_at.is_(None),
    postgresql_where=outbox.c.sent_at.is_(None),
)

history = Table(
    "history",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("cluster_id", Text, nullable=False),
    Column("machine_id", Text, nullable=True),
    Column("from_state", Text, nullable=False),
    Column("to_state", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("ignored", Boolean, nullable=False),
    Column("note", Text, nullable=False),
    Column("at", Stamp, nullable=False),
    Index("ix_history_cluster_id", "cluster_id"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("cluster_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", Stamp, nullable=False),
    PrimaryKeyConstraint("cluster_id", "name", name="pk_secrets"),
)

# Engine replicas: who is alive, and which replica consumes which shard (see shard_balancer).
engine_members = Table(
    "engine_members",
    metadata,
    Column("member_id", Text, primary_key=True),
    Column("heartbeat_at", Stamp, nullable=False),
)

shard_leases = Table(
    "shard_leases",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("owner", Text, nullable=True),
    Column("expires_at", Stamp, nullable=True),
)
