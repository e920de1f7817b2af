"""Fixtures for engine tests: unique topology, a SQLite store file, engine child processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.bus import Bus
from engine.settings import Settings
from engine.store import Store
from support.processes import ClusterbusProcess


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        topology_prefix=f"test-engine-{uuid.uuid4().hex[:10]}",
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'clusterbus.db'}",
        secret_key_file=tmp_path / "clusterbus.key",
        shards=4,
        prefetch=64,
        delay_levels_ms=(200, 500),
        max_message_bytes=16 * 1024,
    )


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(settings, name=f"{settings.topology_prefix}-test")
    await b.declare()
    await b.connect()
    try:
        yield b
    finally:
        await b.close()
        await b.delete_topology()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = await Store.open(settings.store_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path) -> Iterator[list[ClusterbusProcess]]:
    """``spawn`` is a list; tests append started processes; all are killed at the end."""
    started: list[ClusterbusProcess] = []
    yield started
    for proc in started:
        proc.kill()
