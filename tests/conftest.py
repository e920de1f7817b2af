"""Fixtures shared by every suite that runs against the real broker and store.

Each directory's conftest defines ``settings`` (its own unique topology prefix, store file and
delays); the ``bus`` and ``store`` here are built from whichever ``settings`` applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.bus import Bus
from engine.settings import Settings
from engine.store import Store


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    """The topology declared and a connected Bus; the topology is deleted afterwards."""
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
