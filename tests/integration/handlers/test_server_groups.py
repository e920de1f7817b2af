"""Server groups found-or-created by several handler replicas at once (Nova names are not unique).

The process-local lock in ``server_group_id`` cannot order replicas in other processes, so these
tests call ``find_or_create_group`` (what runs under that lock) from threads that each stand in
for one replica, all made to miss the group before any of them creates one.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from handlerkit import CLOUD, named

from handlers.compute_parts import SERVER_GROUP_POLICY, find_or_create_group
from simulator.testing import Sim

NAME = "clusterbus-race-control-plane"
REPLICAS = 3


class _Compute:
    """A compute proxy whose first server-group listing waits until every replica has listed."""

    def __init__(self, real: Any, listed: threading.Barrier) -> None:
        self._real = real
        self._listed: threading.Barrier | None = listed

    def server_groups(self) -> list[Any]:
        groups = list(self._real.server_groups())
        if self._listed is not None:
            barrier, self._listed = self._listed, None
            barrier.wait(timeout=10)  # everyone has seen "no group": all of them will create
        return groups

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Replica:
    """A Connection as one handler replica sees it (its own session, the racing listing)."""

    def __init__(self, sim: Sim, listed: threading.Barrier) -> None:
        self.compute = _Compute(sim.connect(CLOUD).compute, listed)


def test_racing_replicas_agree_on_one_group_and_leave_no_extra(sim: Sim) -> None:
    listed = threading.Barrier(REPLICAS)
    replicas = [_Replica(sim, listed) for _ in range(REPLICAS)]

    with ThreadPoolExecutor(REPLICAS) as pool:
        chosen = list(pool.map(lambda conn: find_or_create_group(conn, NAME), replicas))

    groups = named(sim, "server_groups", NAME)
    assert [g["id"] for g in groups] == [chosen[0]], "one group left, the one every replica uses"
    assert set(chosen) == {chosen[0]}
    assert groups[0]["policy"] == SERVER_GROUP_POLICY


def test_an_existing_group_is_reused_and_the_oldest_wins(sim: Sim) -> None:
    conn = sim.connect(CLOUD)
    oldest = conn.compute.create_server_group(name=NAME, policy=SERVER_GROUP_POLICY)
    conn.compute.create_server_group(name=NAME, policy=SERVER_GROUP_POLICY)  # left by a crash

    assert find_or_create_group(conn, NAME) == oldest.id
    # The newer one may be another replica's, about to be used: it is not ours to drop here.
    assert len(named(sim, "server_groups", NAME)) == 2
