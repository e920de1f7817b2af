"""loadbalancer.ensure / loadbalancer.delete against the simulator over HTTP (time scale 0.01).

Default delays: lb_create 60 s (0.6 s wall), lb_update 5 s, lb_delete 10 s.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from handlerkit import CLOUD, inventory, leaks, named, run_until_done
from lbkit import lb_task, make_network, run_retrying

from engine.messages.events import LoadBalancerCreated, LoadBalancerReady
from engine.messages.tasks import EnsureLoadBalancer
from handlers.base import Deps, TerminalError, cluster_tag, owned_tags
from handlers.loadbalancer import (
    MONITOR,
    fip_description,
    handle_loadbalancer_delete,
    handle_loadbalancer_ensure,
)
from handlers.loadbalancer_common import MAX_POLL_ATTEMPT, try_change
from handlers.network import handle_network_delete
from simulator.profile import (
    Delays,
    ErrorFault,
    Faults,
    Profile,
    ProjectSpec,
    Quota,
    StuckLoadBalancer,
)
from simulator.testing import Sim

LB = "clusterbus-{}-kubeapi"


def _ours(sim: Sim, kind: str, cid: str, project: str = CLOUD) -> list[dict[str, Any]]:
    return [r for r in inventory(sim, kind, project) if cluster_tag(cid) in r.get("tags", [])]


STUCK_SECONDS = 60.0  # a stuck LB stays PENDING_UPDATE 0.6 s wall after each change


@pytest.fixture
def sim_profile(request: pytest.FixtureRequest) -> Profile:
    stuck = StuckLoadBalancer(name_regex="^clusterbus-stuck-kubeapi$", seconds=STUCK_SECONDS)
    faults = Faults(stuck_load_balancers=[stuck])
    if getattr(request, "param", None) == "flaky":
        faults.errors = [ErrorFault(match="load-balancer.*", rate=0.25),
                         ErrorFault(match="network.floatingips.*", rate=0.25)]  # fmt: skip
    projects = [
        ProjectSpec(name="demo", user="demo", password="demo-password"),
        ProjectSpec(name="alt", user="alt", password="alt-password"),
        ProjectSpec(name="nolb", user="nolb", password="pw", quota=Quota(loadbalancer=0)),
        ProjectSpec(name="nofip", user="nofip", password="pw", quota=Quota(floatingip=0)),
    ]
    return Profile(time_scale=0.01, seed=1234, faults=faults, projects=projects,
                   delays=Delays(lb_create=60, lb_update=5, lb_delete=10))  # fmt: skip


async def test_ensure_builds_the_endpoint_once_and_reports_every_id(sim: Sim, deps: Deps) -> None:
    net = await make_network(deps, "alpha")
    cidrs = ["192.0.2.0/24", "10.0.0.0/8"]
    task = lb_task("alpha", net, extra_ports=[9345], allowed_cidrs=cidrs)
    run = await run_until_done(handle_loadbalancer_ensure, task, deps)

    assert [e.type for e in run.events] == ["loadbalancer.created", "loadbalancer.ready"]
    created, ready = run.events[0].data, run.events[1].data
    assert run.rounds > 1  # PENDING_CREATE was polled, not waited for
    LoadBalancerCreated.model_validate(created)
    LoadBalancerReady.model_validate(ready)
    EnsureLoadBalancer.model_validate(run.task)  # what the runner re-publishes stays valid
    [lb] = named(sim, "loadbalancers", LB.format("alpha"))
    vip = {"vip_port_id": lb["vip_port_id"], "vip_address": lb["vip_address"]}
    assert created == {"cluster_id": "alpha", "loadbalancer_id": lb["id"], **vip}
    assert lb["vip_subnet_id"] == net.subnet_id and lb["tags"] == owned_tags("alpha")
    listeners = {li["protocol_port"]: li for li in _ours(sim, "listeners", "alpha")}
    pools = {p["id"]: p for p in _ours(sim, "pools", "alpha")}
    monitors = _ours(sim, "healthmonitors", "alpha")
    assert sorted(listeners) == [6443, 9345]
    for port, listener in listeners.items():
        assert listener["name"] == f"clusterbus-alpha-kubeapi-{port}"
        assert (listener["protocol"], sorted(listener["allowed_cidrs"])) == ("TCP", sorted(cidrs))
        assert ready["listener_ids"][port] == listener["id"]
        pool = pools[ready["pool_ids"][port]]
        assert (pool["name"], pool["protocol"], pool["lb_algorithm"]) == (
            f"clusterbus-alpha-kubeapi-{port}", "TCP", "ROUND_ROBIN",
        )  # fmt: skip
    assert len(monitors) == 2
    assert {m["id"] for m in monitors} == set(ready["monitor_ids"].values())
    assert all({k: m[k] for k in MONITOR} == MONITOR for m in monitors)
    [fip] = _ours(sim, "floatingips", "alpha")
    assert fip["port_id"] == lb["vip_port_id"] and fip["description"] == fip_description("alpha")
    assert (ready["floating_ip_id"], ready["floating_ip"]) == (
        fip["id"],
        fip["floating_ip_address"],
    )
    assert fip["floating_ip_address"].startswith("127.100.")
    assert (ready["vip_address"], ready["vip_port_id"]) == (lb["vip_address"], lb["vip_port_id"])
    calls = sim.inspect("calls")["calls"]
    assert calls["load-balancer.loadbalancers.create"] == 1  # fully populated: one create
    assert "load-balancer.listeners.create" not in calls

    # Run twice (first without any recorded ID): nothing new, the same IDs, ready at once.
    again = await run_until_done(handle_loadbalancer_ensure, task, deps)
    assert again.rounds == 1
    assert [e.type for e in again.events] == ["loadbalancer.created", "loadbalancer.ready"]
    assert again.events[1].data == ready
    known = await run_until_done(handle_loadbalancer_ensure, {**task, "known": ready}, deps)
    assert [e.type for e in known.events] == ["loadbalancer.ready"]
    for kind, count in (("loadbalancers", 1), ("listeners", 2), ("pools", 2),
                        ("healthmonitors", 2), ("floatingips", 1)):  # fmt: skip
        assert len(_ours(sim, kind, "alpha")) == count, kind
    assert sim.inspect("calls")["calls"]["network.floatingips.create"] == 1


async def test_repairs_one_change_per_run_and_waits_out_a_stuck_load_balancer(
    sim: Sim, deps: Deps
) -> None:
    net = await make_network(deps, "stuck")
    conn = sim.connect(CLOUD)
    bare = conn.load_balancer.create_load_balancer(
        name=LB.format("stuck"), vip_subnet_id=net.subnet_id, tags=owned_tags("stuck")
    )
    sim.wait_status("loadbalancers", bare.id, "ACTIVE")
    # A change made elsewhere: the LB is PENDING_UPDATE for a while and refuses changes with 409.
    conn.load_balancer.update_load_balancer(bare.id, description="touched")
    busy = partial(conn.load_balancer.create_listener, load_balancer_id=bare.id,
                   protocol="TCP", protocol_port=6443)  # fmt: skip
    assert try_change(busy) is False  # "Invalid state PENDING_UPDATE ..." means later, not failed

    before = sim.inspect("calls")
    task = lb_task("stuck", net, known={"loadbalancer_id": bare.id})
    run = await run_until_done(handle_loadbalancer_ensure, task, deps, deadline=20)

    assert [e.type for e in run.events] == ["loadbalancer.ready"]
    calls = sim.inspect("calls")
    for kind in ("listeners", "pools", "healthmonitors"):  # one change each, never a 409 retry
        key = f"load-balancer.{kind}.create"
        assert calls["calls"][key] - before["calls"].get(key, 0) == 1
        assert calls["errors"].get(key, 0) == before["errors"].get(key, 0)
    assert run.rounds >= 8  # every change waited out in several polls
    assert run.task["attempt"] <= MAX_POLL_ATTEMPT + 1
    assert len(_ours(sim, "loadbalancers", "stuck")) == 1


@pytest.mark.parametrize("sim_profile", ["flaky"], indirect=True)
async def test_injected_500s_are_retried_without_duplicates(sim: Sim, deps: Deps) -> None:
    net = await make_network(deps, "flaky")
    run, errors = await run_retrying(handle_loadbalancer_ensure, lb_task("flaky", net), deps)
    ready = run.last("loadbalancer.ready").data
    assert errors > 0
    assert len(_ours(sim, "loadbalancers", "flaky")) == 1
    assert [f["id"] for f in _ours(sim, "floatingips", "flaky")] == [ready["floating_ip_id"]]

    gone, _ = await run_retrying(handle_loadbalancer_delete, lb_task("flaky", net), deps)
    assert [e.type for e in gone.events] == ["loadbalancer.deleted"]
    assert _ours(sim, "loadbalancers", "flaky") == [] and _ours(sim, "floatingips", "flaky") == []


async def test_quota_errors_are_terminal_with_openstacks_message(sim: Sim, deps: Deps) -> None:
    net = await make_network(deps, "nolb", cloud="nolb")
    with pytest.raises(TerminalError, match="Quota has been met for resources: LoadBalancer"):
        await run_until_done(handle_loadbalancer_ensure, lb_task("nolb", net, cloud="nolb"), deps)

    net = await make_network(deps, "nofip", cloud="nofip")
    with pytest.raises(TerminalError, match=r"Quota exceeded for resources: \['floatingip'\]"):
        await run_until_done(handle_loadbalancer_ensure, lb_task("nofip", net, cloud="nofip"), deps)
    assert _ours(sim, "floatingips", "nofip", project="nofip") == []


async def test_ovn_load_balancer_in_error_is_terminal_and_can_be_deleted(
    sim: Sim, deps: Deps
) -> None:
    net = await make_network(deps, "broken")
    task = lb_task("broken", net, provider="ovn")
    ready = (await run_until_done(handle_loadbalancer_ensure, task, deps)).last(
        "loadbalancer.ready"
    )
    [pool] = _ours(sim, "pools", "broken")
    assert pool["lb_algorithm"] == "SOURCE_IP_PORT"  # OVN balances on source IP and port
    # No simulator fault ends a load balancer in ERROR: set it on the live record.
    sim.cloud.table("loadbalancers")[ready.data["loadbalancer_id"]]["provisioning_status"] = "ERROR"
    with pytest.raises(TerminalError, match="is in ERROR"):
        await handle_loadbalancer_ensure(lb_task("broken", net, known=ready.data), deps)
    gone = await run_until_done(handle_loadbalancer_delete, lb_task("broken", net), deps)
    assert [e.type for e in gone.events] == ["loadbalancer.deleted"]
    assert _ours(sim, "loadbalancers", "broken") == []


async def test_delete_releases_fip_and_lb_then_network_leaves_no_leak(sim: Sim, deps: Deps) -> None:
    net = await make_network(deps, "gone")
    ensure = await run_until_done(handle_loadbalancer_ensure, lb_task("gone", net), deps)
    ready = ensure.last("loadbalancer.ready").data

    task = lb_task("gone", net, known=ready)
    run = await run_until_done(handle_loadbalancer_delete, task, deps)
    assert [e.type for e in run.events] == ["loadbalancer.deleted"]
    assert run.rounds > 1  # PENDING_DELETE was polled until the LB was gone
    assert _ours(sim, "floatingips", "gone") == [] and _ours(sim, "loadbalancers", "gone") == []
    assert not [p for p in inventory(sim, "ports") if p["id"] == ready["vip_port_id"]]
    calls = sim.inspect("calls")["calls"]
    assert calls["load-balancer.loadbalancers.delete"] == 1
    assert calls["network.floatingips.delete"] == 1

    again = await run_until_done(handle_loadbalancer_delete, task, deps)
    assert [e.type for e in again.events] == ["loadbalancer.deleted"] and again.rounds == 1
    net_task = {"cluster_id": "gone", "cloud": CLOUD, "known": {"network_id": net.network_id}}
    await run_until_done(handle_network_delete, net_task, deps)
    assert leaks(sim, "gone") == []


async def test_delete_spares_resources_without_our_tag(sim: Sim, deps: Deps) -> None:
    net = await make_network(deps, "spare")
    conn = sim.connect(CLOUD)
    foreign = conn.load_balancer.create_load_balancer(
        name=LB.format("spare"), vip_subnet_id=net.subnet_id
    )
    sim.wait_status("loadbalancers", foreign.id, "ACTIVE")
    public = conn.network.find_network("public", ignore_missing=False)
    fip = conn.network.create_ip(
        floating_network_id=public.id, port_id=foreign.vip_port_id,
        description=fip_description("spare"),
    )  # fmt: skip
    known = {"loadbalancer_id": foreign.id, "floating_ip_id": fip.id}

    run = await run_until_done(handle_loadbalancer_delete, lb_task("spare", net, known=known), deps)

    assert [e.type for e in run.events] == ["loadbalancer.deleted"]
    assert conn.load_balancer.get_load_balancer(foreign.id).provisioning_status == "ACTIVE"
    assert conn.network.get_ip(fip.id).port_id == foreign.vip_port_id
    calls = sim.inspect("calls")["calls"]
    assert "load-balancer.loadbalancers.delete" not in calls
    assert "network.floatingips.delete" not in calls
