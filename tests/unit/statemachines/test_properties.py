"""Any sequence of plausible, possibly duplicated and reordered messages keeps the invariants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sm_support import Driver, Event, answer, make_spec

from statemachines import ClusterState, Emit, MachineState, Role

BUSY = {
    MachineState.CREATING,
    MachineState.BUILDING,
    MachineState.PROVISIONED,
    MachineState.JOINING,
}
_FAILURES = {
    "network.ensure": "network.failed",
    "security_groups.ensure": "security_groups.failed",
    "loadbalancer.ensure": "loadbalancer.failed",
}


def failure(task: Emit) -> list[Event]:
    """The failure event a handler would publish for ``task`` (or its success if it has none)."""
    d = task.data
    if task.type in _FAILURES:
        return [(_FAILURES[task.type], {"cluster_id": d["cluster_id"], "reason": "quota"})]
    if task.type in ("server.create", "server.poll"):
        data = {"cluster_id": d["cluster_id"], "machine_id": d["machine_id"],
                "reason": "Quota exceeded for cores", "server_id": d.get("server_id")}  # fmt: skip
        return [("server.failed", data)]
    return answer(task)


class ClusterLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver()
        self.bag: list[Emit] = []
        self.seen: list[Event] = []

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        outcome = self.driver.send(kind, data)
        event(f"cluster {self.driver.cluster.state.value}")
        self.bag.extend(outcome.emits)
        self.driver.queue.clear()

    @initialize(
        cp=st.sampled_from([1, 3]),
        workers=st.integers(0, 3),
        bastion=st.booleans(),
    )
    def create(self, cp: int, workers: int, bastion: bool) -> None:
        self._send("cluster.create", {"spec": make_spec(cp=cp, workers={"md": workers},
                                                        bastion=bastion)})  # fmt: skip

    @precondition(lambda self: bool(self.bag))
    @rule(
        picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=30),
        fail_at=st.integers(0, 60),
        keep_at=st.integers(0, 30),
        reverse=st.booleans(),
    )
    def answer_tasks(self, picks: list[int], fail_at: int, keep_at: int, reverse: bool) -> None:
        """Answer some outstanding tasks in any order; one may fail, one may be answered twice."""
        for i, pick in enumerate(picks):
            if not self.bag:
                return
            task = self.bag[pick % len(self.bag)]
            if i != keep_at:
                self.bag.remove(task)
            events = failure(task) if i == fail_at else answer(task)
            for message in reversed(events) if reverse else events:
                self.seen.append(message)
                self._send(*message)

    @precondition(lambda self: bool(self.seen))
    @rule(pick=st.integers(0, 10_000))
    def replay_an_event(self, pick: int) -> None:
        self._send(*self.seen[pick % len(self.seen)])

    @rule(dice=st.integers(0, 3))
    def delete(self, dice: int) -> None:
        if dice == 0:  # rarer than the rest, so that runs get far before deleting
            self._send("cluster.delete", {})

    @rule()
    def retry(self) -> None:
        self._send("cluster.retry", {})

    @rule(workers=st.integers(0, 4), cp=st.sampled_from([None, 1, 3]))
    def scale(self, workers: int, cp: int | None) -> None:
        self._send("cluster.scale", {"workers": {"md": workers}, "control_plane_replicas": cp})

    @rule(minutes=st.integers(0, 20))
    def reconcile(self, minutes: int) -> None:
        self.driver.now += timedelta(minutes=minutes)
        self._send("cluster.reconcile", {"now": self.driver.now.isoformat()})

    @invariant()
    def deleted_cluster_has_no_live_machines(self) -> None:
        agg = self.driver.cluster
        if agg.state is ClusterState.DELETED:
            assert all(m.state is MachineState.DELETED for m in agg.machines.values())

    @invariant()
    def ready_cluster_is_complete(self) -> None:
        agg = self.driver.cluster
        if agg.state is not ClusterState.READY:
            return
        assert {c.status for c in agg.conditions.values()} == {"True"}
        live = [m for m in agg.machines.values() if m.state is not MachineState.DELETED]
        assert all(m.state is MachineState.RUNNING for m in live)
        cps = [m for m in live if m.role is Role.CONTROL_PLANE]
        assert len(cps) == agg.spec["control_plane"]["replicas"]
        for pool in agg.spec["worker_pools"]:
            assert len([m for m in live if m.pool == pool["name"]]) == pool["replicas"]
        assert len([m for m in live if m.role is Role.BASTION]) == int(
            agg.spec["bastion"]["enabled"]
        )

    @invariant()
    def control_plane_one_at_a_time(self) -> None:
        busy = [
            m
            for m in self.driver.cluster.machines.values()
            if m.role is Role.CONTROL_PLANE and m.state in BUSY
        ]
        assert len(busy) <= 1, [(m.id, m.state) for m in busy]

    @invariant()
    def a_working_cluster_always_awaits_something(self) -> None:
        """Else a lost message would leave it waiting forever: the reconciler needs a task."""
        agg = self.driver.cluster
        if agg.state not in (ClusterState.READY, ClusterState.FAILED, ClusterState.DELETED):
            assert agg.awaiting, agg.state

    @invariant()
    def failed_cluster_says_why(self) -> None:
        agg = self.driver.cluster
        if agg.state is ClusterState.FAILED:
            assert agg.failure_reason and agg.failed_from is not None


ClusterLifecycle.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestClusterLifecycle = ClusterLifecycle.TestCase
