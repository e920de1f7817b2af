"""The simulated Neutron through openstacksdk over HTTP: what CAPO-like handlers rely on."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import pytest
import requests
from aiohttp import web
from openstack import exceptions

from simulator import neutron
from simulator.core import ApiError, Cloud
from simulator.neutron import EXTERNAL_NETWORK_ID, EXTERNAL_SUBNET_ID
from simulator.profile import Profile, ProjectSpec, Quota

if TYPE_CHECKING:
    from conftest import Sim

EXTERNAL = ipaddress.ip_network("127.100.0.0/16")


def _network_with_subnet(conn: Any, name: str, cidr: str = "10.6.0.0/24") -> tuple[Any, Any]:
    network = conn.network.create_network(name=name)
    subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr=cidr, name=name)
    return network, subnet


def test_versions_and_extensions(sim: Sim) -> None:
    versions = requests.get(f"{sim.base_url}/network", timeout=5).json()
    assert versions["versions"][0]["id"] == "v2.0"
    conn = sim.connect()
    aliases = {e.alias for e in conn.network.extensions()}
    assert {"standard-attr-tag", "router", "external-net", "security-group", "quotas"} <= aliases


def test_external_network_is_seeded(sim: Sim) -> None:
    conn = sim.connect()
    external = conn.network.find_network("public", ignore_missing=False)
    assert external.id == EXTERNAL_NETWORK_ID
    assert external.is_router_external
    listed = list(conn.network.networks(is_router_external=True))
    assert [n.id for n in listed] == [EXTERNAL_NETWORK_ID]
    subnet = conn.network.get_subnet(external.subnet_ids[0])
    assert subnet.cidr == "127.100.0.0/16"


def test_router_gateway_interface_and_floating_ip(sim: Sim) -> None:
    conn = sim.connect()
    network, subnet = _network_with_subnet(conn, "cluster-a")
    assert subnet.gateway_ip == "10.6.0.1"
    assert subnet.allocation_pools == [{"start": "10.6.0.2", "end": "10.6.0.254"}]
    router = conn.network.create_router(
        name="cluster-a", external_gateway_info={"network_id": EXTERNAL_NETWORK_ID}
    )
    gateway_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    assert ipaddress.ip_address(gateway_ip) in EXTERNAL
    port = conn.network.create_port(network_id=network.id, name="node-0")
    assert port.fixed_ips[0]["ip_address"] == "10.6.0.2"
    fip = conn.network.create_ip(floating_network_id=EXTERNAL_NETWORK_ID)
    address = ipaddress.ip_address(fip.floating_ip_address)
    assert address in EXTERNAL and int(address) & 0xFF not in (0, 1)
    assert fip.status == "DOWN"

    # No router interface yet: the external network is unreachable from the subnet.
    with pytest.raises(exceptions.NotFoundException, match="not reachable from subnet"):
        conn.network.update_ip(fip, port_id=port.id)

    conn.network.add_interface_to_router(router, subnet=subnet.id)
    with pytest.raises(exceptions.BadRequestException, match="already has a port"):
        conn.network.add_interface_to_router(router, subnet=subnet.id)
    interface = next(conn.network.ports(device_owner="network:router_interface"))
    assert interface.fixed_ips[0]["ip_address"] == "10.6.0.1"

    fip = conn.network.update_ip(fip, port_id=port.id)
    assert fip.port_id == port.id and fip.fixed_ip_address == "10.6.0.2"
    assert fip.router_id == router.id
    sim.wait_for(lambda: conn.network.get_ip(fip.id).status == "ACTIVE")
    found = list(conn.network.ips(floating_ip_address=fip.floating_ip_address))
    assert [f.id for f in found] == [fip.id]
    assert [f.id for f in conn.network.ips(port_id=port.id)] == [fip.id]

    with pytest.raises(exceptions.ConflictException, match="still has ports"):
        conn.network.delete_router(router)
    fip = conn.network.update_ip(fip, port_id=None)
    assert fip.port_id is None and fip.status == "DOWN"

    conn.network.delete_ip(fip)
    conn.network.delete_port(port)
    conn.network.remove_interface_from_router(router, subnet=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(network)
    assert sim.inspect("leaks")["count"] == 0


def test_security_groups_reference_each_other(sim: Sim) -> None:
    conn = sim.connect()
    groups = {
        role: conn.network.create_security_group(name=f"k8s-{role}", description=role)
        for role in ("controlplane", "worker", "lb")
    }
    egress = [r for r in groups["lb"].security_group_rules if r["direction"] == "egress"]
    assert {r["ethertype"] for r in egress} == {"IPv4", "IPv6"}
    for role, remote in (("controlplane", "worker"), ("worker", "controlplane"), ("lb", "worker")):
        conn.network.create_security_group_rule(
            security_group_id=groups[role].id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=6443,
            port_range_max=6443,
            remote_group_id=groups[remote].id,
        )
    refreshed = conn.network.get_security_group(groups["worker"].id)
    ingress = [r for r in refreshed.security_group_rules if r["direction"] == "ingress"]
    assert [r["remote_group_id"] for r in ingress] == [groups["controlplane"].id]
    listed = list(conn.network.security_group_rules(security_group_id=groups["worker"].id))
    assert len(listed) == 3

    with pytest.raises(exceptions.ConflictException, match="Rule id is"):
        conn.network.create_security_group_rule(
            security_group_id=groups["worker"].id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=6443,
            port_range_max=6443,
            remote_group_id=groups["controlplane"].id,
        )
    with pytest.raises(exceptions.BadRequestException):
        conn.network.create_security_group_rule(
            security_group_id=groups["worker"].id,
            direction="ingress",
            protocol="tcp",
            port_range_min=100,
            port_range_max=10,
        )
    for group in groups.values():
        conn.network.delete_security_group(group)
    assert list(conn.network.security_group_rules(remote_group_id=groups["worker"].id)) == []


def test_security_group_in_use_and_default(sim: Sim) -> None:
    conn = sim.connect()
    network, _ = _network_with_subnet(conn, "sg-net")
    group = conn.network.create_security_group(name="in-use")
    port = conn.network.create_port(network_id=network.id, security_group_ids=[group.id])
    plain = conn.network.create_port(network_id=network.id)
    default = conn.network.find_security_group("default", ignore_missing=False)
    assert plain.security_group_ids == [default.id]
    with pytest.raises(exceptions.ConflictException, match="in use"):
        conn.network.delete_security_group(group)
    with pytest.raises(exceptions.ConflictException, match="default security group"):
        conn.network.delete_security_group(default)
    conn.network.delete_port(port)
    conn.network.delete_security_group(group)
    conn.network.delete_port(plain)
    conn.network.delete_network(network)


def test_tags_and_tag_filters(sim: Sim) -> None:
    conn = sim.connect()
    first = conn.network.create_network(name="tagged-1")
    second = conn.network.create_network(name="tagged-2")
    conn.network.set_tags(first, ["cluster=a", "role=net"])
    conn.network.set_tags(second, ["cluster=b", "role=net"])
    assert conn.network.get_network(first.id).tags == ["cluster=a", "role=net"]
    by_tags = {n.name for n in conn.network.networks(tags="role=net,cluster=a")}
    assert by_tags == {"tagged-1"}
    assert {n.name for n in conn.network.networks(any_tags="cluster=a,cluster=b")} == {
        "tagged-1",
        "tagged-2",
    }
    assert {n.name for n in conn.network.networks(not_tags="cluster=a", tags="role=net")} == {
        "tagged-2"
    }
    conn.network.remove_tag(first, "cluster=a")
    assert conn.network.get_network(first.id).tags == ["role=net"]
    conn.network.delete_network(first)
    conn.network.delete_network(second)


def test_delete_network_with_port_conflicts(sim: Sim) -> None:
    conn = sim.connect()
    network, subnet = _network_with_subnet(conn, "busy")
    port = conn.network.create_port(network_id=network.id)
    with pytest.raises(exceptions.ConflictException, match="ports still in use"):
        conn.network.delete_network(network)
    with pytest.raises(exceptions.ConflictException):
        conn.network.delete_subnet(subnet)
    conn.network.delete_port(port)
    conn.network.delete_network(network)
    assert conn.network.find_subnet(subnet.id) is None


def test_port_quota(sim: Sim) -> None:
    profile = Profile(
        time_scale=0.01,
        projects=[
            ProjectSpec(name="demo", user="demo", password="demo-password", quota=Quota(port=2))
        ],
    )
    sim.put_profile(profile)
    conn = sim.connect()
    network, _ = _network_with_subnet(conn, "small")
    ports = [conn.network.create_port(network_id=network.id) for _ in range(2)]
    with pytest.raises(
        exceptions.ConflictException, match=r"Quota exceeded for resources: \['port'\]"
    ):
        conn.network.create_port(network_id=network.id)
    for port in ports:
        conn.network.delete_port(port)
    conn.network.delete_network(network)


def test_ports_filters_and_paging(sim: Sim) -> None:
    conn = sim.connect()
    network, _ = _network_with_subnet(conn, "paged")
    made = [conn.network.create_port(network_id=network.id, name=f"p{i}") for i in range(5)]
    page = list(conn.network.ports(network_id=network.id, limit=2))
    assert [p.id for p in page] == [p.id for p in made]
    by_ip = list(conn.network.ports(fixed_ips=["ip_address=10.6.0.4"]))
    assert [p.name for p in by_ip] == ["p2"]
    conn.network.update_port(made[0], device_id="vm-1", device_owner="compute:nova")
    assert conn.network.get_port(made[0].id).status == "ACTIVE"
    assert [p.id for p in conn.network.ports(device_id="vm-1")] == [made[0].id]
    for port in made:
        conn.network.delete_port(port)
    conn.network.delete_network(network)


def test_projects_are_isolated(sim: Sim) -> None:
    demo, alt = sim.connect("demo"), sim.connect("alt")
    network = demo.network.create_network(name="private")
    assert alt.network.find_network(network.id) is None
    with pytest.raises(exceptions.NotFoundException):
        alt.network.create_port(network_id=network.id)
    demo.network.delete_network(network)


def test_single_tag_operations(sim: Sim) -> None:
    conn = sim.connect()
    group = conn.network.create_security_group(name="tag-me")
    conn.network.add_tag(group, "cluster=x")
    assert conn.network.get_security_group(group.id).tags == ["cluster=x"]
    url = f"{sim.base_url}/network/v2.0/security-groups/{group.id}/tags/cluster=x"
    headers = {"X-Auth-Token": conn.auth_token}
    assert requests.get(url, headers=headers, timeout=5).status_code == 204
    missing = requests.get(url + "y", headers=headers, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "TagNotFound"
    conn.network.remove_all_tags(group)
    assert conn.network.get_security_group(group.id).tags == []
    conn.network.delete_security_group(group)


def test_errors_have_neutron_shape(sim: Sim) -> None:
    conn = sim.connect()
    headers = {"X-Auth-Token": conn.auth_token}
    response = requests.get(
        f"{sim.base_url}/network/v2.0/networks/nope", headers=headers, timeout=5
    )
    assert response.status_code == 404
    assert response.json()["NeutronError"]["message"] == "Network nope could not be found."
    body = {"subnet": {"network_id": EXTERNAL_NETWORK_ID, "cidr": "10.0.0.300/24", "ip_version": 4}}
    bad = requests.post(
        f"{sim.base_url}/network/v2.0/subnets", json=body, headers=headers, timeout=5
    )
    assert bad.status_code in (400, 403)


# ---- the plain-Python functions Nova and Octavia call ----------------------------------------
@pytest.fixture
def cloud() -> Cloud:
    cloud = Cloud(profile=Profile())
    neutron.setup(web.Application(), cloud)
    return cloud


def test_create_port_allocates_and_defaults(cloud: Cloud) -> None:
    network = cloud.add("networks", {"id": "net-1", "subnets": [], "shared": False,
                                     "port_security_enabled": True, "tenant_id": "p1",
                                     "project_id": "p1"}, "p1")  # fmt: skip
    assert neutron.create_port(cloud, "p1", network_id="net-1")["fixed_ips"] == []
    with pytest.raises(ApiError) as missing:
        neutron.create_port(cloud, "p1", network_id="unknown")
    assert missing.value.status == 404
    assert network["id"] == "net-1"

    port = neutron.create_port(
        cloud, "p1", network_id=neutron.EXTERNAL_NETWORK_ID, device_id="vm-1",
        device_owner="compute:nova", tags=["t"],
    )  # fmt: skip
    assert port["fixed_ips"][0]["ip_address"] == "127.100.0.2"
    assert port["status"] == "ACTIVE" and port["binding:host_id"]
    default = neutron.resolve_security_group(cloud, "p1", "default")
    assert port["security_groups"] == [default["id"]]
    assert neutron.ports_of_device(cloud, "vm-1") == [port]
    with pytest.raises(ApiError) as unknown_group:
        neutron.resolve_security_group(cloud, "p1", "no-such-group")
    assert unknown_group.value.status == 404


def test_update_and_delete_port(cloud: Cloud) -> None:
    port = neutron.create_port(cloud, "p1", network_id=neutron.EXTERNAL_NETWORK_ID)
    assert port["status"] == "DOWN"
    updated = neutron.update_port(
        cloud, port["id"], {"device_id": "lb-1", "fixed_ips": [{"ip_address": "127.100.9.9"}]}
    )
    assert updated["status"] == "ACTIVE"
    assert updated["fixed_ips"] == [{"subnet_id": EXTERNAL_SUBNET_ID, "ip_address": "127.100.9.9"}]
    assert updated["revision_number"] == 2
    fip = {
        "id": "fip-1", "port_id": port["id"], "fixed_ip_address": "127.100.9.9", "router_id": "r",
        "status": "ACTIVE", "floating_network_id": "other", "floating_ip_address": "1.1.1.1",
    }  # fmt: skip
    cloud.add("floatingips", fip, "p1")
    neutron.delete_port(cloud, port["id"])
    neutron.delete_port(cloud, port["id"])  # unknown ids are ignored
    assert neutron.ports_of_device(cloud, "lb-1") == []
    fip = cloud.table("floatingips")["fip-1"]
    assert fip["port_id"] is None and fip["status"] == "DOWN"
