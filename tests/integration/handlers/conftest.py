"""Fixtures for the handler tests: a live simulator, ``deps`` on it, a fake secret store.

Handlers are driven directly (no broker). Helpers (FakeSecretStore, run_until_done, leaks,
inventory, named, call_count, make_deps, CLOUD) are in handlerkit.py: ``from handlerkit import
run_until_done``. They are re-exported here too, but ``from conftest import`` only works when
this directory's conftest is the last one pytest imported, so prefer handlerkit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from handlerkit import (
    CLOUD,
    TIME_SCALE,
    FakeSecretStore,
    Run,
    call_count,
    inventory,
    leaks,
    make_deps,
    named,
    run_until_done,
)

from engine.cloudpool import ThreadedCloudPool
from handlers.base import Deps
from simulator.profile import Profile
from simulator.testing import Sim

__all__ = [
    "CLOUD",
    "TIME_SCALE",
    "FakeSecretStore",
    "Run",
    "call_count",
    "inventory",
    "leaks",
    "make_deps",
    "named",
    "run_until_done",
]

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """openstacksdk 4.22 warns (RemovedInSDK50/60Warning) from inside its own code."""
    marks = [
        pytest.mark.filterwarnings(f"ignore::openstack.warnings.{name}")
        for name in ("RemovedInSDK50Warning", "RemovedInSDK60Warning")
    ]
    for item in items:
        if HERE in item.path.parents:
            for mark in marks:
                item.add_marker(mark)


@pytest.fixture
def sim_profile() -> Profile:
    """The profile the ``sim`` fixture runs; override it to change delays, faults or quotas."""
    return Profile(time_scale=TIME_SCALE, seed=1234)


@pytest.fixture
def sim(sim_profile: Profile, tmp_path: Path) -> Iterator[Sim]:
    handle = Sim.start(sim_profile, tmp_path / "clouds.yaml")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def secrets() -> FakeSecretStore:
    return FakeSecretStore()


@pytest.fixture
def deps(sim: Sim, secrets: FakeSecretStore) -> Iterator[Deps]:
    built = make_deps(sim, secrets)
    try:
        yield built
    finally:
        assert isinstance(built.clouds, ThreadedCloudPool)
        built.clouds.close()


@pytest.fixture(name="run_until_done")
def run_until_done_fixture() -> Any:
    """``run_until_done`` as a fixture, for modules that prefer not to import from conftest."""
    return run_until_done
