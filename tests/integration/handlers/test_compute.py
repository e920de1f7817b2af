"""server.create / server.poll / server.delete against the simulator over HTTP (no broker)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import time
from typing import Any

import pytest
from handlerkit import (
    CLOUD,
    TIME_SCALE,
    FakeSecretStore,
    Run,
    inventory,
    leaks,
    named,
    run_until_done,
)
from openstack.exceptions import BadRequestException

from engine.messages.registry import model_for
from handlers import compute, network
from handlers.base import Deps, TerminalError, TransientError, owned_tags
from handlers.floatingip import handle_floatingip_ensure
from simulator.profile import Profile, ProjectSpec, Quota, ServerFault
from simulator.testing import Sim

CID = "kube"
NODE_CIDR = "10.6.0.0/24"
ENDPOINT = "127.100.0.50"


async def _cluster(sim: Sim, deps: Deps) -> dict[str, Any]:
    """The cluster network (network handler) and two node security groups (SDK)."""
    task = {
        "cluster_id": CID,
        "cloud": CLOUD,
        "external_network": "public",
        "node_cidr": NODE_CIDR,
        "dns_nameservers": [],
        "known": {},
    }
    ready = (await run_until_done(network.handle_network_ensure, task, deps)).last("network.ready")
    conn = sim.connect(CLOUD)
    groups = {
        role: conn.network.create_security_group(
            name=f"clusterbus-{CID}-{role}", tags=owned_tags(CID)
        ).id
        for role in ("controlplane", "worker", "bastion")
    }
    return {**ready.data, "groups": groups}


def _task(
    net: dict[str, Any], machine_id: str, role: str, bootstrap: str, **extra: Any
) -> dict[str, Any]:
    group = {"control_plane": "controlplane"}.get(role, role)
    return {
        "cluster_id": CID,
        "cloud": CLOUD,
        "attempt": 0,
        "machine_id": machine_id,
        "role": role,
        "pool": None,
        "index": 0,
        "flavor": "m1.small",
        "image": "ubuntu-22.04-kube-v1.30.2",
        "ssh_key_name": None,
        "network_id": net["network_id"],
        "subnet_id": net["subnet_id"],
        "security_group_ids": [net["groups"][group]],
        "server_group_name": None,
        "bootstrap": bootstrap,
        "endpoint_host": ENDPOINT,
        "kubernetes_version": "v1.30.2",
        "known_server_id": None,
        **extra,
    }


def _user_data(sim: Sim, server_id: str) -> str:
    raw = sim.connect("admin").compute.get_server(server_id).user_data
    return base64.b64decode(raw).decode()


def _valid(run: Run) -> Run:
    """Every event and the last (re-published) task match the message catalog."""
    for event in run.events:
        model_for(event.type).model_validate(event.data)
    task_type = {"server.active": "server.poll", "server.deleted": "server.delete"}
    for event in run.events[-1:]:
        if event.type in task_type:
            model_for(task_type[event.type]).model_validate(run.task)
    return run


async def _poll(deps: Deps, built: dict[str, Any]) -> Run:
    task = {
        "cluster_id": CID,
        "cloud": CLOUD,
        "attempt": 0,
        "machine_id": built["machine_id"],
        "server_id": built["server_id"],
    }
    return _valid(await run_until_done(compute.handle_server_poll, task, deps))


async def _build(deps: Deps, task: dict[str, Any]) -> dict[str, Any]:
    model_for("server.create").model_validate(task)
    reply = await compute.handle_server_create(task, deps)
    assert reply.retry_after_ms is None
    (event,) = reply.events
    assert event.type == "server.building"
    model_for(event.type).model_validate(event.data)
    return event.data


async def test_worker_and_init_node_boot_and_become_active(
    sim: Sim, deps: Deps, secrets: FakeSecretStore
) -> None:
    net = await _cluster(sim, deps)
    cp = await _build(deps, _task(net, f"{CID}-control-plane-0", "control_plane", "init"))
    worker = await _build(deps, _task(net, f"{CID}-md-0", "worker", "join_worker"))
    runs = await asyncio.gather(*(_poll(deps, built) for built in (cp, worker)))
    for built, run in zip((cp, worker), runs, strict=True):
        assert run.rounds > 1  # Reply.later while BUILD, then done
        active = run.last("server.active").data
        assert ipaddress.ip_address(active["address"]) in ipaddress.ip_network(NODE_CIDR)
        assert active["server_id"] == built["server_id"]
    assert "kubeadm init" in _user_data(sim, cp["server_id"])
    assert "kubeadm init" not in _user_data(sim, worker["server_id"])
    assert "kubeadm join" in _user_data(sim, worker["server_id"])
    assert (CID, "kubeconfig") in secrets.data  # stored once the init node knows the endpoint
    conn = sim.connect(CLOUD)
    server = conn.compute.get_server(cp["server_id"])
    assert set(owned_tags(CID)) <= set(server.tags)
    assert server.metadata == {"clusterbus-cluster": CID, "clusterbus-role": "control_plane"}
    (group,) = named(sim, "server_groups", f"clusterbus-{CID}-control-plane")
    assert group["policy"] == "soft-anti-affinity" and group["members"] == [cp["server_id"]]
    (port,) = named(sim, "ports", f"{CID}-control-plane-0-0")
    assert cp["port_ids"] == [port["id"]]
    assert port["security_groups"] == [net["groups"]["controlplane"]]


async def test_create_twice_makes_one_server_and_one_port(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    task = _task(net, f"{CID}-md-1", "worker", "join_worker")
    first = await _build(deps, task)
    again = await _build(deps, task)  # a redelivered task: the ID was never recorded
    known = await _build(deps, {**task, "known_server_id": first["server_id"]})
    assert first == again == known
    assert len(named(sim, "servers", f"{CID}-md-1")) == 1
    assert len(named(sim, "ports", f"{CID}-md-1-0")) == 1


async def test_adopts_a_port_left_by_a_crashed_attempt(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    left = sim.connect(CLOUD).network.create_port(
        name=f"{CID}-md-2-0", network_id=net["network_id"], tags=owned_tags(CID)
    )
    built = await _build(deps, _task(net, f"{CID}-md-2", "worker", "join_worker"))
    assert built["port_ids"] == [left.id]
    (port,) = named(sim, "ports", f"{CID}-md-2-0")
    assert port["device_id"] == built["server_id"]
    assert port["security_groups"] == [net["groups"]["worker"]]  # corrected on adoption


async def test_unknown_image_is_terminal_and_creates_nothing(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    task = _task(net, f"{CID}-md-3", "worker", "join_worker", image="no-such-image")
    with pytest.raises(TerminalError, match="image 'no-such-image' not found"):
        await compute.handle_server_create(task, deps)
    with pytest.raises(TerminalError, match=r"flavor 'm9\.huge' not found"):
        await compute.handle_server_create(
            {**task, "image": "cirros-0.6.2", "flavor": "m9.huge"}, deps
        )
    assert named(sim, "ports", f"{CID}-md-3-0") == []


async def test_delete_bastion_releases_fip_server_and_port(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    mid = f"{CID}-bastion"
    built = await _build(deps, _task(net, mid, "bastion", "none", endpoint_host=None))
    assert sim.connect("admin").compute.get_server(built["server_id"]).user_data is None
    poll = {"cluster_id": CID, "cloud": CLOUD, "machine_id": mid, "server_id": built["server_id"]}
    await run_until_done(compute.handle_server_poll, poll, deps)
    fip_task = {**poll, "external_network": "public", "known_floating_ip_id": None}
    fip = (await run_until_done(handle_floatingip_ensure, fip_task, deps)).last("floatingip.ready")
    delete = {**poll, "floating_ip_id": fip.data["floating_ip_id"]}
    run = _valid(await run_until_done(compute.handle_server_delete, delete, deps))
    assert run.rounds > 1 and run.last("server.deleted").data == {
        "cluster_id": CID,
        "machine_id": mid,
    }
    gone = {"servers", "ports", "floatingips"}
    assert [leak for leak in leaks(sim, CID) if leak["kind"] in gone] == []
    net_delete = {"cluster_id": CID, "cloud": CLOUD, "known": {"network_id": net["network_id"]}}
    await run_until_done(network.handle_network_delete, net_delete, deps)
    for group_id in net["groups"].values():
        sim.connect(CLOUD).network.delete_security_group(group_id)
    assert leaks(sim, CID) == []


async def test_delete_control_plane_by_name_drops_the_server_group(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    mid = f"{CID}-control-plane-0"
    await _build(deps, _task(net, mid, "control_plane", "init"))
    delete = {"cluster_id": CID, "cloud": CLOUD, "machine_id": mid, "server_id": None}
    await run_until_done(compute.handle_server_delete, delete, deps)
    assert named(sim, "servers", mid) == [] and named(sim, "ports", f"{mid}-0") == []
    assert inventory(sim, "server_groups") == []
    again = await compute.handle_server_delete(delete, deps)  # a re-run is a no-op
    assert [e.type for e in again.events] == ["server.deleted"]


async def test_server_without_our_tag_is_not_deleted(sim: Sim, deps: Deps) -> None:
    net = await _cluster(sim, deps)
    conn = sim.connect(CLOUD)
    image = conn.image.find_image("cirros-0.6.2", ignore_missing=False)
    foreign = conn.compute.create_server(
        name=f"{CID}-md-9",
        image_id=image.id,
        flavor_id="1",
        networks=[{"uuid": net["network_id"]}],
        tags=["someone-else"],
    )
    for server_id in (None, foreign.id):
        delete = {
            "cluster_id": CID,
            "cloud": CLOUD,
            "machine_id": f"{CID}-md-9",
            "server_id": server_id,
        }
        run = await run_until_done(compute.handle_server_delete, delete, deps)
        assert run.of("server.deleted")
    (server,) = named(sim, "servers", f"{CID}-md-9")
    assert server["status"] != "DELETED"


class TestQuota:
    @pytest.fixture
    def sim_profile(self) -> Profile:
        quota = Quota(instances=0)
        return Profile(
            time_scale=TIME_SCALE,
            seed=1,
            projects=[ProjectSpec(name=CLOUD, user="demo", password="demo-password", quota=quota)],
        )

    async def test_quota_is_terminal_with_novas_message_and_port_is_cleaned(
        self, sim: Sim, deps: Deps
    ) -> None:
        net = await _cluster(sim, deps)
        mid = f"{CID}-md-0"
        with pytest.raises(TerminalError, match=r"Quota exceeded for instances: Requested 1"):
            await compute.handle_server_create(_task(net, mid, "worker", "join_worker"), deps)
        assert len(named(sim, "ports", f"{mid}-0")) == 1  # kept for adoption on retry
        delete = {"cluster_id": CID, "cloud": CLOUD, "machine_id": mid, "server_id": None}
        await run_until_done(compute.handle_server_delete, delete, deps)
        assert named(sim, "ports", f"{mid}-0") == []  # CAPO #1404: no port leak


class TestServerFault:
    MESSAGE = "Exceeded maximum number of retries. Exhausted all hosts available."

    @pytest.fixture
    def sim_profile(self) -> Profile:
        fault = ServerFault(name_regex="-md-", message=self.MESSAGE)
        return Profile(time_scale=TIME_SCALE, seed=1, faults={"server_errors": [fault]})

    async def test_error_fault_message_is_terminal(self, sim: Sim, deps: Deps) -> None:
        net = await _cluster(sim, deps)
        built = await _build(deps, _task(net, f"{CID}-md-0", "worker", "join_worker"))
        poll = {
            "cluster_id": CID,
            "cloud": CLOUD,
            "attempt": 0,
            "machine_id": f"{CID}-md-0",
            "server_id": built["server_id"],
        }
        with pytest.raises(TerminalError) as failure:
            await run_until_done(compute.handle_server_poll, poll, deps)
        assert str(failure.value) == self.MESSAGE
        retry = _task(net, f"{CID}-md-0", "worker", "join_worker")
        with pytest.raises(TransientError, match=r"replacing server .* in ERROR"):
            await compute.handle_server_create(retry, deps)  # cluster.retry: replace it
        deadline = time.monotonic() + 10
        while True:
            try:
                rebuilt = await _build(deps, retry)
                break
            except TransientError:
                assert time.monotonic() < deadline, "the failed server was never replaced"
                await asyncio.sleep(0.05)
        assert rebuilt["server_id"] != built["server_id"]
        assert rebuilt["port_ids"] == built["port_ids"]  # the port was adopted
        live = [s for s in named(sim, "servers", f"{CID}-md-0") if s["status"] != "DELETED"]
        assert [s["id"] for s in live] == [rebuilt["server_id"]]


class EchoingNova:
    """A cloud whose server create fails with Nova's validation text quoting the user data."""

    async def run(self, cloud: str, fn: Any, *args: Any) -> Any:
        _task, user_data = args
        echo = f"Invalid input for field/attribute user_data. Value: {user_data}"
        raise BadRequestException(message=echo, details=echo, http_status=400)


async def test_secret_user_data_never_reaches_a_failure_reason(secrets: FakeSecretStore) -> None:
    deps = Deps(clouds=EchoingNova(), secrets=secrets)
    net = {"network_id": "n", "subnet_id": "s", "groups": {"controlplane": "g"}}
    task = _task(net, f"{CID}-control-plane-0", "control_plane", "init")
    with pytest.raises(TerminalError) as failure:
        await compute.handle_server_create(task, deps)
    assert "quoted the user data" in str(failure.value) and failure.value.__cause__ is None
    assert "Value:" not in str(failure.value)
