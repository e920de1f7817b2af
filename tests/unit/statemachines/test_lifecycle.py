"""Scaling, deleting, failing, retrying and the reconciler's tick."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sm_support import Driver, Event, answer, make_spec

from statemachines import ClusterState, Emit, MachineState

QUOTA = "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"


def ready(cp: int = 3, workers: int = 2, bastion: bool = True) -> Driver:
    driver = Driver()
    driver.create(make_spec(cp=cp, workers={"md": workers}, bastion=bastion))
    driver.run()
    assert state_of(driver) is ClusterState.READY
    return driver


def state_of(driver: Driver) -> ClusterState:
    return driver.cluster.state


def running(driver: Driver, role: str) -> list[str]:
    return [
        m.id
        for m in driver.cluster.machines.values()
        if m.role.value == role and m.state is MachineState.RUNNING
    ]


def emits_of(outcome_emits: list[Emit]) -> list[tuple[str, str | None]]:
    return [(e.type, e.data.get("machine_id")) for e in outcome_emits]


def test_scale_workers_2_to_5_to_1() -> None:
    driver = ready()
    outcome = driver.send("cluster.scale", {"workers": {"md": 5}})
    assert state_of(driver) is ClusterState.SCALING
    assert emits_of(outcome.emits) == [("server.create", f"demo-md-{i}") for i in (2, 3, 4)]
    driver.run()
    assert state_of(driver) is ClusterState.READY
    assert running(driver, "worker") == [f"demo-md-{i}" for i in range(5)]

    outcome = driver.send("cluster.scale", {"workers": {"md": 1}})
    assert emits_of(outcome.emits) == [("server.delete", f"demo-md-{i}") for i in (4, 3, 2, 1)]
    assert outcome.emits[0].data["server_id"] == "srv-demo-md-4"
    driver.run()
    agg = driver.cluster
    assert agg.state is ClusterState.READY
    assert running(driver, "worker") == ["demo-md-0"]
    assert {c.status for c in agg.conditions.values()} == {"True"}


def test_scale_control_plane_1_to_3_to_1_one_machine_at_a_time() -> None:
    driver = ready(cp=1, workers=1)
    outcome = driver.send("cluster.scale", {"control_plane_replicas": 3})
    assert emits_of(outcome.emits) == [("server.create", "demo-control-plane-1")]
    driver.run()
    assert running(driver, "control_plane") == [f"demo-control-plane-{i}" for i in range(3)]
    assert state_of(driver) is ClusterState.READY

    mark = len(driver.emitted())
    outcome = driver.send("cluster.scale", {"control_plane_replicas": 1})
    assert emits_of(outcome.emits) == [("member.delete", "demo-control-plane-2")]
    assert outcome.emits[0].data["member_id"] == "mem-demo-control-plane-2"
    driver.run()
    assert emits_of(driver.emitted()[mark:]) == [
        ("member.delete", "demo-control-plane-2"),
        ("server.delete", "demo-control-plane-2"),
        ("member.delete", "demo-control-plane-1"),
        ("server.delete", "demo-control-plane-1"),
    ]
    assert running(driver, "control_plane") == ["demo-control-plane-0"]
    assert state_of(driver) is ClusterState.READY


def test_scale_up_again_reuses_deleted_machines() -> None:
    driver = ready(cp=1, workers=2)
    driver.send("cluster.scale", {"workers": {"md": 1}})
    driver.run()
    outcome = driver.send("cluster.scale", {"workers": {"md": 2}})
    assert emits_of(outcome.emits) == [("server.create", "demo-md-1")]
    assert outcome.emits[0].data["known_server_id"] is None
    driver.run()
    assert running(driver, "worker") == ["demo-md-0", "demo-md-1"]


def test_scale_outside_ready_is_ignored() -> None:
    driver = Driver()
    driver.create(make_spec())
    outcome = driver.send("cluster.scale", {"workers": {"md": 3}})
    assert outcome.emits == [] and outcome.changes[0].ignored


def test_delete_from_ready_goes_in_order_and_carries_ids() -> None:
    driver = ready()
    outcome = driver.send("cluster.delete", {})
    assert state_of(driver) is ClusterState.DELETING_MACHINES
    first = emits_of(outcome.emits)
    assert first[0] == ("server.delete", "demo-bastion")
    assert outcome.emits[0].data["floating_ip_id"] == "fip-b"
    assert [t for t, _ in first].count("member.delete") == 3
    assert [t for t, _ in first].count("server.delete") == 3  # bastion and 2 workers
    driver.run()
    agg = driver.cluster
    assert agg.state is ClusterState.DELETED
    assert all(m.state is MachineState.DELETED for m in agg.machines.values())
    tail = [e for e in driver.emitted() if e.data.get("machine_id") is None][-4:]
    assert [e.type for e in tail] == [
        "loadbalancer.delete",
        "network.delete",
        "security_groups.delete",
        "pki.delete",
    ]
    assert tail[0].data["known"]["loadbalancer_id"] == "lb-1"
    assert tail[0].data["known"]["floating_ip_id"] == "fip-lb"
    assert tail[1].data["known"]["router_id"] == "rtr-demo"
    assert tail[2].data["known"]["bastion_id"] == "sg-b"
    assert agg.awaiting == {}


def test_delete_mid_create_drops_unstarted_machines_and_deletes_late_servers() -> None:
    driver = Driver()
    driver.create(make_spec())
    # Answer everything up to the load balancer; the servers stay unanswered.
    while driver.queue and driver.queue[0].type != "server.create":
        for kind, data in answer(driver.queue.popleft()):
            driver.send(kind, data)
    assert state_of(driver) is ClusterState.PROVISIONING_CONTROL_PLANE
    lost = [e for e in driver.queue if e.type == "server.create"]
    driver.queue.clear()
    outcome = driver.send("cluster.delete", {})
    assert emits_of(outcome.emits) == [
        ("server.delete", "demo-bastion"),
        ("server.delete", "demo-control-plane-0"),
    ]
    assert outcome.emits[1].data["server_id"] is None  # never learned: the handler finds by name
    # The lost server.create ran after all: its server shows up late and is deleted again.
    late = answer(lost[1])[0]
    outcome = driver.send(*late)
    assert emits_of(outcome.emits) == [("server.delete", "demo-control-plane-0")]
    assert outcome.emits[0].data["server_id"] == "srv-demo-control-plane-0"
    driver.run()
    assert state_of(driver) is ClusterState.DELETED
    assert set(driver.cluster.machines) == {"demo-bastion", "demo-control-plane-0"}


def test_late_network_after_its_delete_is_deleted_again() -> None:
    driver = Driver()
    driver.create(make_spec())
    network_ensure = driver.queue[1]
    driver.queue.clear()
    driver.send("cluster.delete", {})
    driver.run()
    assert state_of(driver) is ClusterState.DELETED
    outcome = driver.send(*answer(network_ensure)[0])
    assert [e.type for e in outcome.emits] == ["network.delete"]
    assert outcome.emits[0].data["known"]["network_id"] == "net-demo"


def fail_first(task_type: str, machine_id: str) -> Callable[[Emit], list[Event]]:
    """Answer like the fake cloud, but fail the first ``task_type`` for ``machine_id``."""
    done: set[str] = set()

    def answer_fn(task: Emit) -> list[Event]:
        if task.type == task_type and task.data.get("machine_id") == machine_id and not done:
            done.add(machine_id)
            data = {"cluster_id": "demo", "machine_id": machine_id, "reason": QUOTA,
                    "server_id": None}  # fmt: skip
            return [("server.failed", data)]
        return answer(task)

    return answer_fn


def test_quota_failure_fails_machine_and_cluster_then_retry_resumes() -> None:
    driver = Driver()
    driver.create(make_spec())
    driver.run(fail_first("server.create", "demo-md-1"))
    agg = driver.cluster
    assert agg.state is ClusterState.FAILED
    assert agg.failure_reason == f"machine demo-md-1 failed: {QUOTA}"
    assert agg.machines["demo-md-1"].state is MachineState.FAILED
    assert agg.machines["demo-md-1"].failure_reason == QUOTA
    assert agg.conditions["WorkersReady"].reason == "MachineFailed"
    assert QUOTA in agg.conditions["WorkersReady"].message
    outcome = driver.send("cluster.retry", {})
    assert state_of(driver) is ClusterState.PROVISIONING_WORKERS
    # md-1 starts over; CP 2, held back while the cluster was failed, goes on too.
    assert emits_of(outcome.emits) == [
        ("server.create", "demo-control-plane-2"),
        ("server.create", "demo-md-1"),
    ]
    driver.run()
    assert state_of(driver) is ClusterState.READY
    assert driver.cluster.failure_reason is None


def test_delete_from_failed() -> None:
    driver = Driver()
    driver.create(make_spec())
    driver.run(fail_first("server.create", "demo-control-plane-0"))
    assert state_of(driver) is ClusterState.FAILED
    driver.send("cluster.delete", {})
    driver.run()
    agg = driver.cluster
    assert agg.state is ClusterState.DELETED
    assert all(m.state is MachineState.DELETED for m in agg.machines.values())


def test_network_failure_and_retry() -> None:
    driver = Driver()
    driver.create(make_spec())
    driver.queue.clear()
    driver.send("network.failed", {"cluster_id": "demo", "reason": "quota: networks"})
    agg = driver.cluster
    assert agg.state is ClusterState.FAILED and agg.failure_reason == "network: quota: networks"
    assert agg.conditions["NetworkReady"].reason == "NetworkCreateFailed"
    outcome = driver.send("cluster.retry", {})
    assert [e.type for e in outcome.emits] == ["network.ensure", "pki.ensure"]
    driver.run()
    assert state_of(driver) is ClusterState.READY


def test_retry_outside_failed_is_ignored() -> None:
    driver = ready(cp=1, workers=0)
    outcome = driver.send("cluster.retry", {})
    assert outcome.changes[0].ignored and outcome.emits == []


def test_terminal_task_failure_fails_the_part() -> None:
    driver = Driver()
    driver.create(make_spec())
    outcome = driver.send("task.failed", {"cluster_id": "demo", "task_type": "network.ensure",
                                          "reason": "boom", "terminal": False})  # fmt: skip
    assert outcome.changes[0].ignored and state_of(driver) is ClusterState.PROVISIONING_NETWORK
    driver.send("task.failed", {"cluster_id": "demo", "task_type": "network.ensure",
                                "reason": "forbidden", "terminal": True})  # fmt: skip
    assert state_of(driver) is ClusterState.FAILED


def test_reconcile_reemits_overdue_tasks() -> None:
    driver = Driver()
    driver.create(make_spec())
    driver.queue.clear()
    early = driver.send("cluster.reconcile", {"now": "x"})
    assert early.emits == [] and early.changes[0].ignored
    driver.now += timedelta(seconds=120)
    outcome = driver.send("cluster.reconcile", {"now": "x"})
    assert sorted(e.type for e in outcome.emits) == ["network.ensure", "pki.ensure"]
    assert not outcome.changes[0].ignored
    again = driver.send("cluster.reconcile", {"now": "x"})
    assert again.emits == []  # the deadline moved on


def test_reconcile_times_out_a_machine_that_never_becomes_active() -> None:
    driver = Driver()
    driver.create(make_spec(cp=1, workers={}, bastion=False))
    while driver.queue and driver.queue[0].type != "server.create":
        for kind, data in answer(driver.queue.popleft()):
            driver.send(kind, data)
    driver.send(*answer(driver.queue.popleft())[0])  # server.building; server.poll never answers
    driver.now += timedelta(minutes=15)
    driver.send("cluster.reconcile", {"now": "x"})
    agg = driver.cluster
    assert agg.machines["demo-control-plane-0"].state is MachineState.FAILED
    assert agg.state is ClusterState.FAILED
    assert agg.failure_reason == (
        "machine demo-control-plane-0 failed: timed out waiting for server ACTIVE"
    )


@pytest.mark.parametrize("cp", [1, 3])
def test_delete_twice_is_ignored(cp: int) -> None:
    driver = ready(cp=cp, workers=1)
    driver.send("cluster.delete", {})
    outcome = driver.send("cluster.delete", {})
    assert outcome.emits == [] and outcome.changes[0].ignored
