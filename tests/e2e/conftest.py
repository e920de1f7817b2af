"""Fixtures for the end-to-end tests: a simulator, the engine and the handlers as child processes.

Each test gets its own simulator (thread, loopback port), a clouds.yaml pointing at it, a unique
RabbitMQ topology prefix and a SQLite store in ``tmp_path``. Helpers live in ``e2ekit.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2ekit import Deployment, fast_profile

from engine.bus import Bus
from engine.settings import Settings
from engine.store import Store
from simulator.profile import Profile
from simulator.testing import Sim


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        topology_prefix=f"test-e2e-{uuid.uuid4().hex[:10]}",
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'clusterbus.db'}",
        secret_key_file=tmp_path / "clusterbus.key",
        shards=2,
        prefetch=64,
        # Every poll and retry waits at most 200 ms: the simulator runs at time_scale 0.01.
        delay_levels_ms=(50, 100, 200),
        delivery_limit=20,
    )


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[[Profile], Sim]]:
    """``start_sim(profile)`` starts the simulator once; stopped at teardown."""
    started: list[Sim] = []

    def start(profile: Profile) -> Sim:
        sim = Sim.start(profile, tmp_path / "clouds.yaml")
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim: Callable[[Profile], Sim]) -> Sim:
    return start_sim(fast_profile())


@pytest.fixture
def deployment(settings: Settings, bus: Bus, store: Store, tmp_path: Path) -> Iterator[Deployment]:
    """Engine and handlers processes for ``settings`` (started by the test, killed at teardown)."""
    d = Deployment(settings, bus, store, tmp_path)
    try:
        yield d
    finally:
        d.kill_all()
