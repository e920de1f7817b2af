"""Neutron subnets: CIDR, gateway and allocation pools checked like Neutron, on our networks."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from simulator.core import Cloud, Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
    DHCP_OWNER,
    add_collection,
    check_quota,
    find_visible,
    list_response,
    list_visible,
    neutron_error,
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

_SUBNET_UPDATABLE = {
    "name",
    "description",
    "gateway_ip",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "allocation_pools",
}


def subnet_record(cloud: Cloud, network: Record, body: Record, cidr: Any) -> Record:
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
    subnet = subnet_record(cloud, network, body, cidr)
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
        app, "subnets", list=list_subnets, create=create_subnet, show=show_subnet,
        update=update_subnet, delete=delete_subnet,
    )  # fmt: skip
