"""One cluster's worth of OpenStack through unchanged openstacksdk: build it all, tear it all down.

The topology is the one DESIGN.md describes (network, router, three security groups, bastion and
control-plane servers, an API load balancer with a floating IP); at the end /_sim/leaks is empty.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import openstack.connection
import pytest

from simulator.profile import Delays, Profile
from simulator.testing import Sim

TAG = "clusterbus-cluster=e2e"
CIDR = "10.6.0.0/24"


@pytest.fixture
def sim_profile() -> Profile:
    return Profile(
        time_scale=0.01,
        delays=Delays(server_boot=30, lb_create=60, lb_update=5, lb_delete=10, member_online=10),
    )


def lb_active(sim: Sim, conn: openstack.connection.Connection, lb_id: str) -> None:
    """Octavia refuses changes while PENDING_*: wait for ACTIVE like a real client must."""
    sim.wait_for(
        lambda: conn.load_balancer.get_load_balancer(lb_id).provisioning_status == "ACTIVE"
    )


def build_network(conn: openstack.connection.Connection) -> dict[str, Any]:
    public = conn.network.find_network("public", ignore_missing=False)
    network = conn.network.create_network(name="clusterbus-e2e")
    subnet = conn.network.create_subnet(
        name="clusterbus-e2e",
        network_id=network.id,
        ip_version=4,
        cidr=CIDR,
        dns_nameservers=["127.0.0.53"],
    )
    router = conn.network.create_router(
        name="clusterbus-e2e", external_gateway_info={"network_id": public.id}
    )
    conn.network.add_interface_to_router(router, subnet=subnet.id)
    for resource in (network, subnet, router):
        conn.network.set_tags(resource, ["clusterbus", TAG])
    assert conn.network.get_router(router.id).external_gateway_info["network_id"] == public.id
    return {"public": public, "network": network, "subnet": subnet, "router": router}


def build_security_groups(conn: openstack.connection.Connection) -> dict[str, Any]:
    groups = {
        role: conn.network.create_security_group(name=f"clusterbus-e2e-{role}")
        for role in ("controlplane", "worker", "bastion")
    }
    cp, worker, bastion = groups["controlplane"], groups["worker"], groups["bastion"]
    rules = [
        (cp, 6443, 6443, None, "0.0.0.0/0"),
        (cp, 2379, 2380, cp, None),
        (cp, 10250, 10250, cp, None),
        (cp, 10250, 10250, worker, None),
        (cp, 22, 22, bastion, None),
        (worker, 10250, 10250, cp, None),
        (worker, 30000, 32767, worker, None),
        (worker, 22, 22, bastion, None),
        (bastion, 22, 22, None, "0.0.0.0/0"),
    ]
    for group, low, high, remote, prefix in rules:
        conn.network.create_security_group_rule(
            security_group_id=group.id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=low,
            port_range_max=high,
            remote_group_id=remote.id if remote else None,
            remote_ip_prefix=prefix,
        )
    for group in groups.values():
        conn.network.set_tags(group, ["clusterbus", TAG])
    referenced = {
        r.remote_group_id for r in conn.network.security_group_rules(security_group_id=cp.id)
    }
    assert referenced >= {cp.id, worker.id, bastion.id}
    return groups


def boot_servers(
    sim: Sim, conn: openstack.connection.Connection, net: dict[str, Any], groups: dict[str, Any]
) -> dict[str, Any]:
    keypair = conn.compute.create_keypair(name="clusterbus-e2e")
    group = conn.compute.create_server_group(name="clusterbus-e2e", policy="soft-anti-affinity")
    image = conn.image.find_image("ubuntu-22.04-kube-v1.30.2", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.medium", ignore_missing=False)
    specs = [("e2e-bastion", "bastion")] + [
        (f"e2e-control-plane-{n}", "controlplane") for n in range(3)
    ]
    servers = [
        conn.compute.create_server(
            name=name,
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": net["network"].id}],
            security_groups=[{"name": groups[role].name}],
            key_name=keypair.name,
            scheduler_hints={"group": group.id},
            tags=["clusterbus", TAG],
        )
        for name, role in specs
    ]
    for server in servers:
        sim.wait_for(lambda s=server: conn.compute.get_server(s.id).status == "ACTIVE")
    active = [conn.compute.get_server(s.id) for s in servers]
    for server in active:
        (address,) = server.addresses["clusterbus-e2e"]
        assert ipaddress.ip_address(address["addr"]) in ipaddress.ip_network(CIDR)
        (port,) = conn.network.ports(device_id=server.id)
        assert port.network_id == net["network"].id
    assert set(conn.compute.get_server_group(group.id).member_ids) == {s.id for s in active}
    return {"keypair": keypair, "group": group, "servers": active}


def build_load_balancer(
    sim: Sim, conn: openstack.connection.Connection, net: dict[str, Any], servers: list[Any]
) -> dict[str, Any]:
    lb = conn.load_balancer.create_load_balancer(
        name="clusterbus-e2e-kubeapi", vip_subnet_id=net["subnet"].id, tags=["clusterbus", TAG]
    )
    lb_active(sim, conn, lb.id)
    listener = conn.load_balancer.create_listener(
        name="clusterbus-e2e-kubeapi-6443",
        loadbalancer_id=lb.id,
        protocol="TCP",
        protocol_port=6443,
        tags=[TAG],
    )
    lb_active(sim, conn, lb.id)
    pool = conn.load_balancer.create_pool(
        name="clusterbus-e2e-kubeapi-6443",
        listener_id=listener.id,
        protocol="TCP",
        lb_algorithm="ROUND_ROBIN",
        tags=[TAG],
    )
    lb_active(sim, conn, lb.id)
    monitor = conn.load_balancer.create_health_monitor(
        name="clusterbus-e2e-kubeapi-6443",
        pool_id=pool.id,
        type="TCP",
        delay=10,
        timeout=5,
        max_retries=3,
        tags=[TAG],
    )
    lb_active(sim, conn, lb.id)
    members = []
    for server in servers:
        if "control-plane" not in server.name:
            continue
        address = server.addresses["clusterbus-e2e"][0]["addr"]
        members.append(
            conn.load_balancer.create_member(
                pool,
                name=server.name,
                address=address,
                protocol_port=6443,
                subnet_id=net["subnet"].id,
                tags=[TAG],
            )
        )
        lb_active(sim, conn, lb.id)
    sim.wait_for(
        lambda: all(m.operating_status == "ONLINE" for m in conn.load_balancer.members(pool))
    )
    lb = conn.load_balancer.get_load_balancer(lb.id)
    fip = conn.network.create_ip(
        floating_network_id=net["public"].id, port_id=lb.vip_port_id, description=TAG
    )
    conn.network.set_tags(fip, ["clusterbus", TAG])
    assert ipaddress.ip_address(fip.floating_ip_address).is_loopback
    assert fip.fixed_ip_address == lb.vip_address
    return {
        "lb": lb,
        "listener": listener,
        "pool": pool,
        "monitor": monitor,
        "members": members,
        "fip": fip,
    }


def teardown(sim: Sim, conn: openstack.connection.Connection, built: dict[str, Any]) -> None:
    """Delete in reverse order of creation, waiting where the cloud works asynchronously."""
    api, compute, net, groups = built["api"], built["compute"], built["net"], built["groups"]
    lb_id = api["lb"].id
    conn.network.delete_ip(api["fip"])
    for member in api["members"]:
        conn.load_balancer.delete_member(member, api["pool"])
        lb_active(sim, conn, lb_id)
    conn.load_balancer.delete_health_monitor(api["monitor"])
    lb_active(sim, conn, lb_id)
    conn.load_balancer.delete_pool(api["pool"])
    lb_active(sim, conn, lb_id)
    conn.load_balancer.delete_listener(api["listener"])
    lb_active(sim, conn, lb_id)
    conn.load_balancer.delete_load_balancer(lb_id)
    sim.wait_status("loadbalancers", lb_id, None)
    for server in compute["servers"]:
        conn.compute.delete_server(server)
    for server in compute["servers"]:
        sim.wait_status("servers", server.id, None)
    conn.compute.delete_server_group(compute["group"])
    conn.compute.delete_keypair(compute["keypair"])
    for group in groups.values():
        conn.network.delete_security_group(group)
    conn.network.remove_interface_from_router(net["router"], subnet=net["subnet"].id)
    conn.network.delete_router(net["router"])
    conn.network.delete_subnet(net["subnet"])
    conn.network.delete_network(net["network"])


def test_whole_cluster_topology_up_and_down(sim: Sim) -> None:
    conn = sim.connect()
    net = build_network(conn)
    groups = build_security_groups(conn)
    compute = boot_servers(sim, conn, net, groups)
    api = build_load_balancer(sim, conn, net, compute["servers"])

    tagged = {(leak["kind"], leak["name"]) for leak in sim.inspect("leaks", tag=TAG)["leaks"]}
    assert ("loadbalancers", "clusterbus-e2e-kubeapi") in tagged
    assert ("servers", "e2e-control-plane-0") in tagged
    assert ("security_groups", "clusterbus-e2e-bastion") in tagged
    inventory = sim.inspect("inventory", project="demo")
    assert len(inventory["servers"]) == 4
    assert len(inventory["members"]) == 3

    teardown(sim, conn, {"api": api, "compute": compute, "net": net, "groups": groups})
    leaks = sim.inspect("leaks")
    assert leaks == {"leaks": [], "count": 0}, leaks
    assert sim.inspect("calls")["errors"].get("load-balancer.loadbalancers.create") is None
