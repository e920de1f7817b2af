"""Alembic migrations of the store, run programmatically by ``engine.store.connect.migrate``."""
