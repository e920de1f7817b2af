"""Shard leases: engine_members (heartbeats) and shard_leases (which replica owns a shard).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "engine_members",
        sa.Column("member_id", sa.Text(), primary_key=True),
        sa.Column("heartbeat_at", STAMP, nullable=False),
    )
    op.create_table(
        "shard_leases",
        sa.Column("shard", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("expires_at", STAMP, nullable=True),
    )


def downgrade() -> None:
    for table in ("shard_leases", "engine_members"):
        op.drop_table(table)
