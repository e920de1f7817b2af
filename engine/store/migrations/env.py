"""Alembic environment: runs on the connection handed over by ``engine.store.connect.migrate``.

The store opens an async engine and calls ``command.upgrade`` inside ``run_sync``, passing the
sync connection in ``config.attributes["connection"]``; there is no alembic.ini and no offline mode.
"""

from __future__ import annotations

from alembic import context

from engine.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through engine.store.connect.migrate (no alembic.ini)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
