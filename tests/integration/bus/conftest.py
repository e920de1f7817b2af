"""Fixtures for the bus tests: a unique topology prefix per test, deleted afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bushelpers import bus_settings

from engine.bus import Bus
from engine.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return bus_settings()


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(settings, name=f"{settings.topology_prefix}-bus")
    await b.connect()
    await b.declare()
    try:
        yield b
    finally:
        await b.close()
        await b.delete_topology()
