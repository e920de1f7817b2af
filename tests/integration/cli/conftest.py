"""Fixtures for the CLI and client tests: unique topology, SQLite store, an engine child process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.bus import Bus
from engine.client import ClusterClient
from engine.settings import Settings
from support.engine import wait_engine_ready
from support.processes import ClusterbusProcess, engine_process


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        topology_prefix=f"test-cli-{uuid.uuid4().hex[:10]}",
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'clusterbus.db'}",
        secret_key_file=tmp_path / "clusterbus.key",
        shards=2,
        delay_levels_ms=(200, 500),
    )


@pytest.fixture
async def engine(settings: Settings, bus: Bus, tmp_path: Path) -> AsyncIterator[ClusterbusProcess]:
    """An engine WITHOUT handlers: tasks wait in the handler queues, nobody answers them."""
    proc = engine_process(settings, tmp_path)
    try:
        await wait_engine_ready(bus)
        yield proc
    finally:
        proc.kill()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[ClusterClient]:
    async with ClusterClient(settings) as c:
        yield c
