"""Fixtures: a live simulator on a free loopback port, reachable by synchronous openstacksdk.

Override ``sim_profile`` in a test module to run against another realism profile; the default
runs at time scale 0.01. ``simulator.testing.Sim`` is the handle the ``sim`` fixture yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.profile import Profile
from simulator.testing import Sim

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
    return Profile(time_scale=0.01, seed=1234)


@pytest.fixture
def sim(sim_profile: Profile, tmp_path: Path) -> Iterator[Sim]:
    handle = Sim.start(sim_profile, tmp_path / "clouds.yaml")
    try:
        yield handle
    finally:
        handle.stop()
