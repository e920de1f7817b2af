"""Neutron networks and the seeded external network (subnets: neutron_subnets)."""

from __future__ import annotations

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
    parse_cidr,
)
from simulator.neutron_subnets import subnet_record

_NETWORK_UPDATABLE = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "port_security_enabled",
    "mtu",
    "router:external",
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
    subnet = subnet_record(
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


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "networks", list=list_networks, create=create_network, show=show_network,
        update=update_network, delete=delete_network,
    )  # fmt: skip
