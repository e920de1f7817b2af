"""The simulated Octavia through openstacksdk over HTTP: the load balancer CAPO-like handlers build.

Delays at time scale 0.01: lb_create 0.3 s, lb_update 0.4 s, lb_delete 0.1 s, member_online
0.2 s, server_boot 1 s. Load balancers named ``stuck-*`` stay PENDING_UPDATE after a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import requests
from openstack import exceptions

from simulator.neutron import EXTERNAL_NETWORK_ID
from simulator.profile import Delays, Faults, Profile, ProjectSpec, Quota, StuckLoadBalancer

if TYPE_CHECKING:
    from simulator.testing import Sim

UPDATE_SECONDS = 0.4  # lb_update in wall-clock seconds


@pytest.fixture
def sim_profile() -> Profile:
    return Profile(
        time_scale=0.01,
        seed=7,
        delays=Delays(lb_create=30, lb_update=40, lb_delete=10, member_online=20, server_boot=100),
        faults=Faults(stuck_load_balancers=[StuckLoadBalancer(name_regex="^stuck-", seconds=1e5)]),
    )


def _subnet(conn: Any, name: str = "cluster", cidr: str = "10.8.0.0/24") -> Any:
    network = conn.network.create_network(name=name)
    return conn.network.create_subnet(network_id=network.id, ip_version=4, cidr=cidr, name=name)


def _wait_active(sim: Sim, conn: Any, lb_id: str) -> Any:
    def active() -> Any:
        lb = conn.load_balancer.get_load_balancer(lb_id)
        return lb if lb.provisioning_status == "ACTIVE" else None

    return sim.wait_for(active, timeout=10)


def _active_lb(sim: Sim, conn: Any, subnet: Any, name: str = "k8s-api") -> Any:
    lb = conn.load_balancer.create_load_balancer(name=name, vip_subnet_id=subnet.id)
    return _wait_active(sim, conn, lb.id)


def _stays(condition: Callable[[], bool], seconds: float) -> bool:
    """True when ``condition`` holds at every poll for ``seconds`` (a 'nothing changes' check)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


def _api_stack(sim: Sim, conn: Any, lb: Any) -> tuple[Any, Any, Any]:
    """Listener 6443/TCP, ROUND_ROBIN pool, TCP health monitor (waiting out each change)."""
    listener = conn.load_balancer.create_listener(
        name="api", protocol="TCP", protocol_port=6443, load_balancer_id=lb.id
    )
    _wait_active(sim, conn, lb.id)
    pool = conn.load_balancer.create_pool(
        name="api", protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=listener.id
    )
    _wait_active(sim, conn, lb.id)
    monitor = conn.load_balancer.create_health_monitor(
        pool_id=pool.id, type="TCP", delay=10, timeout=5, max_retries=3
    )
    _wait_active(sim, conn, lb.id)
    return listener, pool, monitor


def test_versions_and_catalogs(sim: Sim) -> None:
    body = requests.get(f"{sim.base_url}/load-balancer", timeout=5).json()
    assert body["versions"][0]["id"] == "v2.0"
    assert body["versions"][-1]["status"] == "CURRENT"
    conn = sim.connect()
    assert {"amphora", "ovn"} <= {p.name for p in conn.load_balancer.providers()}
    assert list(conn.load_balancer.flavors()) == []
    assert [z.name for z in conn.load_balancer.availability_zones()] == ["nova"]


def test_load_balancer_with_vip_port_listener_pool_monitor_member(sim: Sim) -> None:
    conn = sim.connect()
    subnet = _subnet(conn)
    created = conn.load_balancer.create_load_balancer(
        name="k8s-api", vip_subnet_id=subnet.id, tags=["cluster=a"]
    )
    assert (created.provisioning_status, created.operating_status) == ("PENDING_CREATE", "OFFLINE")
    assert created.provider == "amphora"
    lb = _wait_active(sim, conn, created.id)
    assert lb.operating_status == "ONLINE"
    port = conn.network.get_port(lb.vip_port_id)
    assert port.name == f"octavia-lb-{lb.id}"
    assert (port.device_owner, port.device_id) == ("Octavia", f"lb-{lb.id}")
    assert port.fixed_ips[0]["ip_address"] == lb.vip_address
    assert (lb.vip_network_id, lb.vip_subnet_id) == (subnet.network_id, subnet.id)

    listener, pool, monitor = _api_stack(sim, conn, lb)
    member = conn.load_balancer.create_member(pool, address="10.8.0.50", protocol_port=6443)
    assert member.provisioning_status == "PENDING_CREATE"
    lb = _wait_active(sim, conn, lb.id)
    assert [x["id"] for x in lb.listeners] == [listener.id]
    assert [x["id"] for x in lb.pools] == [pool.id]
    pool = conn.load_balancer.get_pool(pool.id)
    assert pool.health_monitor_id == monitor.id
    assert [x["id"] for x in pool.members] == [member.id]
    assert conn.load_balancer.get_listener(listener.id).default_pool_id == pool.id
    assert conn.load_balancer.get_member(member, pool).provisioning_status == "ACTIVE"
    assert [x.id for x in conn.load_balancer.load_balancers(tags="cluster=a")] == [lb.id]
    assert [x.id for x in conn.load_balancer.listeners(protocol_port=6443)] == [listener.id]
    assert list(conn.load_balancer.load_balancers(name="other")) == []

    with pytest.raises(exceptions.ConflictException) as raised:
        conn.load_balancer.create_listener(
            protocol="TCP", protocol_port=6443, load_balancer_id=lb.id
        )
    assert "already using protocol_port 6443" in str(raised.value)


def test_change_while_pending_update_is_409(sim: Sim) -> None:
    conn = sim.connect()
    lb = _active_lb(sim, conn, _subnet(conn))
    listener = conn.load_balancer.create_listener(
        protocol="TCP", protocol_port=6443, load_balancer_id=lb.id
    )
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE"
    with pytest.raises(exceptions.ConflictException) as child:
        conn.load_balancer.create_pool(
            protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=listener.id
        )
    assert f"Load Balancer {lb.id} is immutable and cannot be updated." in str(child.value)
    with pytest.raises(exceptions.ConflictException) as own:
        conn.load_balancer.update_load_balancer(lb.id, description="changed")
    assert f"Invalid state PENDING_UPDATE of loadbalancer resource {lb.id}" in str(own.value)
    assert _wait_active(sim, conn, lb.id).description == ""
    assert conn.load_balancer.get_listener(listener.id).provisioning_status == "ACTIVE"


def test_member_online_only_with_an_active_server_at_its_address(sim: Sim) -> None:
    conn = sim.connect()
    subnet = _subnet(conn)
    lb = _active_lb(sim, conn, subnet)
    listener = conn.load_balancer.create_listener(
        protocol="TCP", protocol_port=6443, load_balancer_id=lb.id
    )
    _wait_active(sim, conn, lb.id)
    pool = conn.load_balancer.create_pool(
        protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=listener.id
    )
    _wait_active(sim, conn, lb.id)
    orphan = conn.load_balancer.create_member(pool, address="10.8.0.99", protocol_port=6443)
    assert orphan.operating_status == "NO_MONITOR"  # nobody checks it yet
    _wait_active(sim, conn, lb.id)
    conn.load_balancer.create_health_monitor(
        pool_id=pool.id, type="TCP", delay=10, timeout=5, max_retries=3
    )
    _wait_active(sim, conn, lb.id)
    assert conn.load_balancer.get_member(orphan, pool).operating_status == "ERROR"

    flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
    image = conn.image.find_image("cirros-0.6.2", ignore_missing=False)
    server = conn.compute.create_server(
        name="cp-0", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": subnet.network_id}]
    )
    address = next(iter(conn.network.ports(device_id=server.id))).fixed_ips[0]["ip_address"]
    assert conn.compute.get_server(server.id).status == "BUILD"
    member = conn.load_balancer.create_member(pool, address=address, protocol_port=6443)
    assert member.operating_status == "OFFLINE"  # its server is still building
    sim.wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", timeout=10)
    sim.wait_for(
        lambda: conn.load_balancer.get_member(member, pool).operating_status == "ONLINE",
        timeout=10,
    )
    assert conn.load_balancer.get_pool(pool.id).operating_status == "DEGRADED"
    assert conn.load_balancer.get_load_balancer(lb.id).operating_status == "DEGRADED"
    tree = conn.load_balancer.get(f"/lbaas/loadbalancers/{lb.id}/status").json()
    members = tree["statuses"]["loadbalancer"]["listeners"][0]["pools"][0]["members"]
    assert {m["address"]: m["operating_status"] for m in members} == {
        "10.8.0.99": "ERROR",
        address: "ONLINE",
    }


def test_stuck_load_balancer_stays_pending_update(sim: Sim) -> None:
    conn = sim.connect()
    lb = _active_lb(sim, conn, _subnet(conn), name="stuck-api")
    conn.load_balancer.create_listener(protocol="TCP", protocol_port=6443, load_balancer_id=lb.id)

    def pending() -> bool:
        return bool(
            conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE"
        )

    assert _stays(pending, 3 * UPDATE_SECONDS)
    with pytest.raises(exceptions.ConflictException):
        conn.load_balancer.create_listener(
            protocol="TCP", protocol_port=443, load_balancer_id=lb.id
        )


def test_cascade_delete_removes_the_tree_and_vip_port_but_not_the_floating_ip(sim: Sim) -> None:
    conn = sim.connect()
    subnet = _subnet(conn)
    router = conn.network.create_router(
        name="cluster", external_gateway_info={"network_id": EXTERNAL_NETWORK_ID}
    )
    conn.network.add_interface_to_router(router, subnet=subnet.id)
    lb = _active_lb(sim, conn, subnet)
    listener, pool, monitor = _api_stack(sim, conn, lb)
    conn.load_balancer.create_member(pool, address="10.8.0.50", protocol_port=6443)
    _wait_active(sim, conn, lb.id)
    fip = conn.network.create_ip(floating_network_id=EXTERNAL_NETWORK_ID, port_id=lb.vip_port_id)
    assert fip.fixed_ip_address == lb.vip_address

    with pytest.raises(exceptions.BadRequestException) as raised:
        conn.load_balancer.delete_load_balancer(lb.id)
    assert "it has children" in str(raised.value)
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "PENDING_DELETE"
    sim.wait_for(lambda: conn.load_balancer.find_load_balancer(lb.id) is None, timeout=10)

    assert conn.load_balancer.find_listener(listener.id) is None
    assert conn.load_balancer.find_pool(pool.id) is None
    assert conn.load_balancer.find_health_monitor(monitor.id) is None
    assert sim.cloud.table("members") == {}
    with pytest.raises(exceptions.NotFoundException):
        conn.network.get_port(lb.vip_port_id)
    survivor = conn.network.get_ip(fip.id)
    assert (survivor.port_id, survivor.fixed_ip_address) == (None, None)


def test_single_call_create_builds_the_whole_tree(sim: Sim) -> None:
    conn = sim.connect()
    subnet = _subnet(conn)
    lb = conn.load_balancer.create_load_balancer(
        name="graph",
        vip_subnet_id=subnet.id,
        listeners=[
            {
                "name": "api",
                "protocol": "TCP",
                "protocol_port": 6443,
                "default_pool": {
                    "name": "api",
                    "protocol": "TCP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"address": "10.8.0.60", "protocol_port": 6443}],
                    "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
                },
            }
        ],
    )
    lb = _wait_active(sim, conn, lb.id)
    (listener,) = conn.load_balancer.listeners(load_balancer_id=lb.id)
    pool = conn.load_balancer.get_pool(listener.default_pool_id)
    assert listener.provisioning_status == pool.provisioning_status == "ACTIVE"
    assert pool.health_monitor_id is not None and len(pool.members) == 1


def test_quota_validation_and_not_found(sim: Sim) -> None:
    profile = Profile(
        time_scale=0.01,
        projects=[
            ProjectSpec(
                name="demo", user="demo", password="demo-password", quota=Quota(loadbalancer=1)
            )
        ],
    )
    sim.put_profile(profile, reset=True)
    conn = sim.connect()
    subnet = _subnet(conn)
    lb = conn.load_balancer.create_load_balancer(name="one", vip_subnet_id=subnet.id)
    with pytest.raises(exceptions.ForbiddenException) as quota:
        conn.load_balancer.create_load_balancer(name="two", vip_subnet_id=subnet.id)
    assert "Quota has been met for resources: LoadBalancer" in str(quota.value)
    _wait_active(sim, conn, lb.id)
    with pytest.raises(exceptions.BadRequestException) as port:
        conn.load_balancer.create_listener(
            protocol="TCP", protocol_port=70000, load_balancer_id=lb.id
        )
    assert "protocol_port" in str(port.value)
    with pytest.raises(exceptions.BadRequestException):
        conn.load_balancer.create_load_balancer(name="no-vip")
    with pytest.raises(exceptions.NotFoundException):
        conn.load_balancer.create_listener(
            protocol="TCP",
            protocol_port=80,
            load_balancer_id="00000000-0000-0000-0000-000000000000",
        )
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "ACTIVE"


def test_failed_single_call_create_leaves_nothing_behind(sim: Sim) -> None:
    conn = sim.connect()
    subnet = _subnet(conn)
    ports_before = {p.id for p in conn.network.ports()}
    bad_pool = {"name": "api", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": "10.8.0.60", "protocol_port": 0}]}  # fmt: skip
    with pytest.raises(exceptions.BadRequestException) as raised:
        conn.load_balancer.create_load_balancer(
            name="broken", vip_subnet_id=subnet.id, pools=[bad_pool]
        )
    assert "protocol_port" in str(raised.value)
    assert list(conn.load_balancer.load_balancers()) == []
    assert list(conn.load_balancer.pools()) == []
    assert {p.id for p in conn.network.ports()} == ports_before
