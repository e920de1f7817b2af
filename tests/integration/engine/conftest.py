"""Fixtures for engine tests: unique topology, a SQLite store file, engine child processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.settings import Settings
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
        lease_interval_s=0.5,  # a killed engine's shards move within ~2 s
    )


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path) -> Iterator[list[ClusterbusProcess]]:
    """``spawn`` is a list; tests append started processes; all are killed at the end."""
    started: list[ClusterbusProcess] = []
    yield started
    for proc in started:
        proc.kill()
