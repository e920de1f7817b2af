"""Neutron networks and subnets, and the seeded external network."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from simulator.core import Cloud, Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
    DHCP_OWNER,
    EXTERNAL_NETWORK_ID,
    EXTERNAL_SUBNET_ID,
    add_collection,
    as_bool,
    check_quota,
    find_visible,
    list_response,
    list_visible,
    neutron_error,
    new_record,
    not_found,
    now_iso,
    owner_for,
    scope,
    show_response,
    touch,
    updatable,
)
from simulator.neutron_ipam import (
    bad_request,
    check_in_subnet,
    check_pools,
    default_gateway,
    default_pools,
    overlaps,
    parse_cidr,
)

_NETWORK_UPDATABLE = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "port_security_enabled",
    "mtu",
    "router:external",
}
_SUBNET_UPDATABLE = {
    "name",
    "description",
    "gateway_ip",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "allocation_pools",
}


def network_fields(name: str, *, shared: bool = False, external: bool = False) -> Record:
    return {
        "name": name,
        "status": "ACTIVE",
        "admin_state_up": True,
        "shared": shared,
        "router:external": external,
        "subnets": [],
        "mtu": 1442,
        "port_security_enabled": True,
        "availability_zones": ["nova"],
        "availability_zone_hints": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": external,
        "l2_adjacency": True,
    }


def seed_external_network(cloud: Cloud) -> Record:
    """The admin-owned shared external network and its subnet (floating IPs come from it)."""
    existing = cloud.table("networks").get(EXTERNAL_NETWORK_ID)
    if existing is not None:
        return existing
    profile = cloud.profile
    stamp = now_iso()
    # Shown as owned by the admin project (keystone seeds first), yet shared: no project owns it.
    projects = cloud.table("projects").values()
    admin = next((p["id"] for p in projects if p.get("name") == "admin"), "")
    network: Record = {
        "id": EXTERNAL_NETWORK_ID,
        "tenant_id": admin,
        "project_id": admin,
        "description": "",
        "tags": [],
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": 1,
    }
    network.update(network_fields(profile.external_network_name, shared=True, external=True))
    cloud.add("networks", network, None)
    cidr = parse_cidr(profile.external_cidr, 4)
    subnet = _subnet_record(
        cloud, network, {"name": f"{profile.external_network_name}-subnet"}, cidr
    )
    subnet["id"] = EXTERNAL_SUBNET_ID
    cloud.add("subnets", subnet, None)
    network["subnets"] = [EXTERNAL_SUBNET_ID]
    return network


# ---- networks ---------------------------------------------------------------------------------
def _get_network(request: web.Request) -> Record:
    network_id = request.match_info["id"]
    network = find_visible(cloud_of(request), "networks", network_id, scope(request))
    if network is None:
        raise not_found("Network", network_id)
    return network


async def list_networks(request: web.Request) -> web.Response:
    return list_response(
        request, "networks", list_visible(cloud_of(request), "networks", scope(request))
    )


async def create_network(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="network")
    project_id = owner_for(request, body)
    check_quota(cloud, project_id, "network")
    fields = network_fields(str(body.get("name") or ""))
    for key in ("admin_state_up", "shared", "port_security_enabled", "router:external"):
        if key in body:
            fields[key] = as_bool(body[key], key)
    fields["mtu"] = int(body.get("mtu") or 1442)
    network = new_record(cloud, "networks", project_id, fields)
    network["description"] = str(body.get("description") or "")
    network["tags"] = list(body.get("tags") or [])
    return json_response({"network": public(network)}, status=201)


async def show_network(request: web.Request) -> web.Response:
    return show_response(request, "network", _get_network(request))


async def update_network(request: web.Request) -> web.Response:
    network = _get_network(request)
    body = updatable(await read_json(request, wrapper="network"), _NETWORK_UPDATABLE, "network")
    network.update(body)
    return json_response({"network": public(touch(network))})


async def delete_network(request: web.Request) -> web.Response:
    cloud, network = cloud_of(request), _get_network(request)
    ports = cloud.list("ports", None, lambda p: p["network_id"] == network["id"])
    if any(p["device_owner"] != DHCP_OWNER for p in ports):
        raise neutron_error(
            409,
            "NetworkInUse",
            f"Unable to complete operation on network {network['id']}. "
            "There are one or more ports still in use on the network.",
        )
    for port in ports:
        cloud.remove("ports", port["id"])
    for subnet_id in network["subnets"]:
        cloud.remove("subnets", subnet_id)
    cloud.remove("networks", network["id"])
    return no_content()


# ---- subnets ----------------------------------------------------------------------------------
def _subnet_record(cloud: Cloud, network: Record, body: Record, cidr: Any) -> Record:
    gateway = body.get("gateway_ip", default_gateway(cidr))
    if gateway is not None:
        gateway = check_in_subnet(cidr, gateway, "gateway_ip")
    pools = body.get("allocation_pools")
    pools = check_pools(cidr, pools, gateway) if pools else default_pools(cidr, gateway)
    stamp = now_iso()
    return {
        "id": cloud.new_id(),
        "name": str(body.get("name") or ""),
        "network_id": network["id"],
        "tenant_id": network["tenant_id"],
        "project_id": network["project_id"],
        "ip_version": cidr.version,
        "cidr": str(cidr),
        "gateway_ip": gateway,
        "allocation_pools": pools,
        "dns_nameservers": list(body.get("dns_nameservers") or []),
        "host_routes": list(body.get("host_routes") or []),
        "enable_dhcp": bool(body.get("enable_dhcp", True)),
        "ipv6_ra_mode": body.get("ipv6_ra_mode"),
        "ipv6_address_mode": body.get("ipv6_address_mode"),
        "subnetpool_id": None,
        "service_types": [],
        "segment_id": None,
        "description": str(body.get("description") or ""),
        "tags": list(body.get("tags") or []),
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": 1,
    }


def _get_subnet(request: web.Request) -> Record:
    subnet_id = request.match_info["id"]
    subnet = find_visible(cloud_of(request), "subnets", subnet_id, scope(request))
    if subnet is None:
        raise not_found("Subnet", subnet_id)
    return subnet


async def list_subnets(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    subnets = [
        s
        for s in list_visible(cloud, "subnets", None)
        if find_visible(cloud, "networks", s["network_id"], scope(request))
    ]
    return list_response(request, "subnets", subnets)


async def create_subnet(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="subnet")
    network_id = str(body.get("network_id") or "")
    network = find_visible(cloud, "networks", network_id, scope(request))
    if network is None:
        raise not_found("Network", network_id)
    project_id = owner_for(request, body)
    if network["_project_id"] not in (project_id, None) and not request.get("roles", []).count(
        "admin"
    ):
        raise neutron_error(
            403, "Forbidden", "Tenant is not allowed to create subnets on this network."
        )
    ip_version = int(body.get("ip_version") or 4)
    if ip_version not in (4, 6):
        raise bad_request(f"Invalid input for ip_version. Reason: '{ip_version}' is not in [4, 6].")
    if not body.get("cidr"):
        raise bad_request(
            "Bad subnets request: a subnetpool must be specified in the absence of a cidr."
        )
    cidr = parse_cidr(body["cidr"], ip_version)
    clash = overlaps(cloud, network_id, cidr)
    if clash is not None:
        raise bad_request(
            f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: "
            f"{network_id} overlaps with another subnet."
        )
    check_quota(cloud, project_id, "subnet")
    subnet = _subnet_record(cloud, network, body, cidr)
    subnet["tenant_id"] = subnet["project_id"] = project_id
    cloud.add("subnets", subnet, project_id)
    network["subnets"].append(subnet["id"])
    touch(network)
    return json_response({"subnet": public(subnet)}, status=201)


async def show_subnet(request: web.Request) -> web.Response:
    return show_response(request, "subnet", _get_subnet(request))


async def update_subnet(request: web.Request) -> web.Response:
    subnet = _get_subnet(request)
    body = updatable(await read_json(request, wrapper="subnet"), _SUBNET_UPDATABLE, "subnet")
    cidr = ipaddress.ip_network(subnet["cidr"])
    if body.get("gateway_ip") is not None:
        body["gateway_ip"] = check_in_subnet(cidr, body["gateway_ip"], "gateway_ip")
    if "allocation_pools" in body:
        body["allocation_pools"] = check_pools(
            cidr, body["allocation_pools"], body.get("gateway_ip", subnet["gateway_ip"])
        )
    subnet.update(body)
    return json_response({"subnet": public(touch(subnet))})


async def delete_subnet(request: web.Request) -> web.Response:
    cloud, subnet = cloud_of(request), _get_subnet(request)
    users = cloud.list(
        "ports",
        None,
        lambda p: (
            p["device_owner"] != DHCP_OWNER
            and any(ip["subnet_id"] == subnet["id"] for ip in p["fixed_ips"])
        ),
    )
    if users:
        raise neutron_error(
            409,
            "SubnetInUse",
            f"Unable to complete operation on subnet {subnet['id']}: "
            "One or more ports have an IP allocation from this subnet.",
        )
    cloud.remove("subnets", subnet["id"])
    network = cloud.table("networks").get(subnet["network_id"])
    if network is not None and subnet["id"] in network["subnets"]:
        network["subnets"].remove(subnet["id"])
        touch(network)
    return no_content()


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "networks", list=list_networks, create=create_network, show=show_network,
        update=update_network, delete=delete_network,
    )  # fmt: skip
    add_collection(
        app, "subnets", list=list_subnets, create=create_subnet, show=show_subnet,
        update=update_subnet, delete=delete_subnet,
    )  # fmt: skip
