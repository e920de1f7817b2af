"""Creating a cluster: 3 control-plane machines, 2 workers and a bastion, event by event."""

from __future__ import annotations

import json

import pytest
from sm_support import Driver, answer, make_spec, roundtrip

from statemachines import ClusterState, Cond, MachineState, handle


@pytest.fixture
def created() -> Driver:
    driver = Driver()
    driver.create(make_spec(cp=3, workers={"md": 2}, bastion=True))
    driver.run()
    return driver


def test_create_reaches_ready_with_every_condition_true(created: Driver) -> None:
    agg = created.cluster
    assert agg.state is ClusterState.READY
    assert {c.status for c in agg.conditions.values()} == {"True"}
    assert set(agg.conditions) == {c.value for c in Cond}
    assert [m.state for m in agg.machines.values()] == [MachineState.RUNNING] * 6
    assert agg.endpoint == "https://127.100.0.5:6443"
    assert agg.awaiting == {}


def test_first_tasks_and_phase_order(created: Driver) -> None:
    first = created.log[0][2]
    assert [e.type for e in first.emits] == ["pki.ensure", "network.ensure"]
    states = [
        c.to_state
        for _, _, outcome in created.log
        for c in outcome.changes
        if c.kind == "cluster" and c.from_state != c.to_state
    ]
    assert states == [
        "provisioning_network",
        "provisioning_security_groups",
        "provisioning_endpoint",
        "provisioning_control_plane",
        "provisioning_workers",
        "ready",
    ]


def test_endpoint_starts_load_balancer_and_bastion_in_parallel(created: Driver) -> None:
    (_, _, outcome) = next(entry for entry in created.log if entry[0] == "security_groups.ready")
    assert [(e.type, e.data.get("machine_id")) for e in outcome.emits] == [
        ("loadbalancer.ensure", None),
        ("server.create", "demo-bastion"),
    ]
    lb = outcome.emits[0].data
    assert lb["subnet_id"] == "sub-demo" and lb["network_id"] == "net-demo"


def test_control_plane_is_created_one_at_a_time(created: Driver) -> None:
    creates = [
        (i, e.data["machine_id"], e.data["bootstrap"])
        for i, (_, _, outcome) in enumerate(created.log)
        for e in outcome.emits
        if e.type == "server.create"
    ]
    order = [(mid, boot) for _, mid, boot in creates]
    assert order[:2] == [("demo-bastion", "none"), ("demo-control-plane-0", "init")]
    assert ("demo-control-plane-1", "join_control_plane") in order
    assert ("demo-md-0", "join_worker") in order and ("demo-md-1", "join_worker") in order
    online = {
        data["machine_id"]: i
        for i, (kind, data, _) in enumerate(created.log)
        if kind == "member.online"
    }
    at = {mid: i for i, mid, _ in creates}
    # CP n+1 is asked for only once CP n answers behind the load balancer.
    assert online["demo-control-plane-0"] == at["demo-control-plane-1"]
    assert online["demo-control-plane-1"] == at["demo-control-plane-2"]
    # Workers all start together, with CP 1, as soon as the control plane is initialized.
    assert at["demo-md-0"] == at["demo-md-1"] == at["demo-control-plane-1"]


def test_server_create_payload_carries_what_the_handler_needs(created: Driver) -> None:
    cp1 = next(
        e.data
        for e in created.emitted()
        if e.type == "server.create" and e.data["machine_id"] == "demo-control-plane-1"
    )
    assert cp1["security_group_ids"] == ["sg-cp"]
    assert cp1["endpoint_host"] == "127.100.0.5"
    assert cp1["server_group_name"] == "demo-control-plane"
    assert cp1["network_id"] == "net-demo" and cp1["subnet_id"] == "sub-demo"
    assert (cp1["role"], cp1["index"], cp1["flavor"]) == ("control_plane", 1, "m1.medium")


def test_ids_are_recorded_as_events_arrive(created: Driver) -> None:
    agg = created.cluster
    assert agg.ids["network"] == {"network_id": "net-demo", "subnet_id": "sub-demo",
                                  "router_id": "rtr-demo"}  # fmt: skip
    assert agg.ids["loadbalancer"]["pool_ids"] == {"6443": "pool-1"}
    cp0 = agg.machines["demo-control-plane-0"]
    assert (cp0.server_id, cp0.member_id, cp0.port_ids) == (
        "srv-demo-control-plane-0",
        "mem-demo-control-plane-0",
        ["port-demo-control-plane-0"],
    )
    bastion = agg.machines["demo-bastion"]
    assert (bastion.floating_ip_id, bastion.floating_ip) == ("fip-b", "127.100.0.9")


def test_rows_round_trip_and_snapshot_has_no_secrets(created: Driver) -> None:
    agg = created.cluster
    again = roundtrip(agg)
    assert again is not None
    assert json.dumps(again.to_rows()) == json.dumps(agg.to_rows())
    snap = agg.snapshot()
    assert snap["state"] == "ready" and snap["endpoint"] == "https://127.100.0.5:6443"
    assert len(snap["machines"]) == 6
    assert snap["machine_counts"] == {"bastion": {"running": 1}, "control_plane": {"running": 3},
                                      "worker": {"running": 2}}  # fmt: skip
    text = json.dumps(snap).lower()
    assert "password" not in text and "private" not in text and "kubeconfig" not in text


def test_no_bastion_and_no_workers() -> None:
    driver = Driver()
    driver.create(make_spec(cp=1, workers={}, bastion=False))
    driver.run()
    agg = driver.cluster
    assert agg.state is ClusterState.READY
    assert list(agg.machines) == ["demo-control-plane-0"]
    assert agg.conditions["BastionReady"].reason == "BastionDisabled"


def test_duplicate_and_late_events_are_ignored(created: Driver) -> None:
    agg = created.cluster
    machines_before = json.dumps(agg.to_rows()[1])
    for kind, data in [
        *answer(created.emitted()[1]),  # network.ready again
        ("member.online", {"cluster_id": "demo", "machine_id": "demo-control-plane-0"}),
        next((k, d) for k, d, _ in created.log if k == "server.active"),
        ("server.building", {"cluster_id": "demo", "machine_id": "demo-nope-9", "server_id": "x"}),
        ("loadbalancer.ready", answer(created.emitted()[2])[0][1]),
    ]:  # fmt: skip
        result, outcome = handle(agg, kind, data, now=created.now)
        assert result is agg
        assert outcome.emits == []
        assert all(c.ignored for c in outcome.changes), (kind, outcome.changes)
    assert agg.state is ClusterState.READY
    assert json.dumps(agg.to_rows()[1]) == machines_before


def test_unknown_type_raises_and_unknown_cluster_is_ignored() -> None:
    with pytest.raises(ValueError, match="unknown message type"):
        handle(None, "cluster.explode", {}, now=Driver().now)
    agg, outcome = handle(None, "network.ready", {"cluster_id": "ghost"}, now=Driver().now)
    assert agg is None and outcome.changes[0].ignored and outcome.emits == []


def test_create_twice_is_ignored(created: Driver) -> None:
    outcome = created.create(make_spec())
    assert outcome.emits == [] and outcome.changes[0].ignored
    assert outcome.changes[0].note == "cluster exists"
