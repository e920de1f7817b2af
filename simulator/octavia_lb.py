"""Octavia load balancers: create (with its VIP port, optionally a whole tree), update, delete.

A new load balancer is PENDING_CREATE for ``delays.lb_create``; a delete is PENDING_DELETE for
``delays.lb_delete`` x ``slow_delete_factor``, after which the record, its children and the VIP
port Octavia made for it disappear (floating IPs on that port survive, unbound).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from simulator import neutron, quotas
from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.octavia_common import (
    ACTIVE,
    PENDING_CREATE,
    PENDING_DELETE,
    PENDING_UPDATE,
    changes,
    children,
    delete_delay,
    lookup,
    new_record,
    owner_for,
    pending_state,
    scope,
    subtree,
    transition,
    update_delay,
    validation,
)
from simulator.octavia_listeners import build_listener, build_pool
from simulator.octavia_listing import list_response, select_fields
from simulator.octavia_members import build_member, build_monitor
from simulator.octavia_status import render_lb, status_tree

PROVIDERS = {
    "amphora": "The Octavia Amphora driver.",
    "octavia": "Deprecated alias of the Octavia Amphora driver.",
    "ovn": "Octavia OVN driver.",
}
AVAILABILITY_ZONES = ("nova",)
_UPDATABLE = ("vip_qos_policy_id", "vip_sg_ids")
_STATS = {
    "active_connections": 0, "bytes_in": 0, "bytes_out": 0,
    "request_errors": 0, "total_connections": 0,
}  # fmt: skip


# ---- the VIP -----------------------------------------------------------------------------------
def _subnet(cloud: Cloud, subnet_id: str) -> Record:
    subnet = cloud.find("subnets", subnet_id)
    if subnet is None:
        raise ApiError(400, f"Subnet {subnet_id} not found.")
    return subnet


def _subnet_on_network(cloud: Cloud, network_id: str, address: str | None) -> Record:
    """The network's subnet for ``address``, or its first (IPv4 preferred) subnet."""
    if cloud.find("networks", network_id) is None:
        raise ApiError(400, f"Network {network_id} not found.")
    subnets = cloud.list("subnets", None, lambda s: s["network_id"] == network_id)
    if address:
        inside = [s for s in subnets if ipaddress.ip_address(address) in _cidr(s)]
        if not inside:
            raise validation(
                "Supplied network does not contain a subnet for VIP address specified."
            )
        return inside[0]
    if not subnets:
        raise validation("Supplied network does not contain a subnet.")
    ipv4 = [s for s in subnets if s.get("ip_version", 4) == 4]
    return (ipv4 or subnets)[0]


def _cidr(subnet: Record) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(str(subnet["cidr"]))


def _given_port(cloud: Cloud, body: Record) -> tuple[Record, Record, str]:
    """(port, subnet, address) for a VIP on a port the user made."""
    port_id = str(body["vip_port_id"])
    port = cloud.find("ports", port_id)
    if port is None:
        raise ApiError(400, f"Port {port_id} not found.")
    if port.get("device_id"):
        raise ApiError(409, f"Port {port_id} is already in use by device {port['device_id']}.")
    wanted = body.get("vip_address")
    for fixed in port.get("fixed_ips", []):
        if not wanted or fixed["ip_address"] == wanted:
            return port, _subnet(cloud, fixed["subnet_id"]), str(fixed["ip_address"])
    raise validation("Specified VIP address not found on the specified VIP port.")


def _allocate_vip(cloud: Cloud, lb: Record, body: Record, project_id: str) -> None:
    """Fill the ``vip_*`` fields, creating Octavia's ``octavia-lb-<id>`` port when needed."""
    address = body.get("vip_address")
    if address is not None:
        try:
            address = str(ipaddress.ip_address(str(address)))
        except ValueError as exc:
            raise ApiError(
                400, f"Invalid input for field/attribute vip_address. Value: '{address}'."
            ) from exc
    if body.get("vip_port_id"):
        port, subnet, address = _given_port(cloud, body)
        neutron.update_port(
            cloud, port["id"], {"device_id": f"lb-{lb['id']}", "device_owner": "Octavia"}
        )
        lb["_owns_vip_port"] = False
    else:
        if body.get("vip_subnet_id"):
            subnet = _subnet(cloud, str(body["vip_subnet_id"]))
        else:
            subnet = _subnet_on_network(cloud, str(body["vip_network_id"]), address)
        fixed: Record = {"subnet_id": subnet["id"]}
        if address:
            fixed["ip_address"] = address
        port = neutron.create_port(
            cloud, project_id, network_id=subnet["network_id"], name=f"octavia-lb-{lb['id']}",
            device_id=f"lb-{lb['id']}", device_owner="Octavia", security_group_ids=[],
            fixed_ips=[fixed],
        )  # fmt: skip
        address = port["fixed_ips"][0]["ip_address"]
        lb["_owns_vip_port"] = True
    lb.update(vip_address=address, vip_port_id=port["id"], vip_subnet_id=subnet["id"],
              vip_network_id=subnet["network_id"])  # fmt: skip


def release_vip(cloud: Cloud, lb: Record) -> None:
    """Runs when a deleted load balancer is finally gone: drop the VIP port Octavia made."""
    if lb.get("_owns_vip_port"):
        neutron.delete_port(cloud, str(lb["vip_port_id"]))
    elif lb.get("vip_port_id") in cloud.table("ports"):
        neutron.update_port(cloud, str(lb["vip_port_id"]), {"device_id": "", "device_owner": ""})


# ---- create ------------------------------------------------------------------------------------
def _validate(body: Record) -> None:
    if not any(body.get(k) for k in ("vip_port_id", "vip_network_id", "vip_subnet_id")):
        raise validation("VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
    provider = body.get("provider") or "amphora"
    if provider not in PROVIDERS:
        raise ApiError(400, f"Provider '{provider}' is not enabled.")
    if body.get("flavor_id"):
        raise validation("Invalid flavor_id.")
    zone = body.get("availability_zone")
    if zone is not None and zone not in AVAILABILITY_ZONES:
        raise validation("Invalid availability zone.")


def _new_lb(cloud: Cloud, project_id: str, body: Record) -> Record:
    lb = new_record(cloud, project_id, body)
    lb.update(
        provider=body.get("provider") or "amphora", flavor_id=None,
        availability_zone=body.get("availability_zone"),
        vip_qos_policy_id=body.get("vip_qos_policy_id"), vip_sg_ids=body.get("vip_sg_ids"),
        additional_vips=[],
    )  # fmt: skip
    return lb


def _graph(cloud: Cloud, lb: Record, body: Record) -> list[Record]:
    """Add the pools (with members and monitors) and listeners of a single-call create."""
    made: list[Record] = []
    pools_by_name: dict[str, Record] = {}
    listeners = [dict(item) for item in body.get("listeners") or []]
    specs = [dict(item) for item in body.get("pools") or []]
    for listener in listeners:  # a full default_pool spec moves to the pools to make first
        pool = listener.get("default_pool")
        if isinstance(pool, dict) and len(pool) > 1:
            specs.append(pool)
            listener["default_pool"] = {"name": pool.get("name")}
    for spec in specs:
        if not spec.get("name"):
            raise validation("Pools must be named when creating a fully populated loadbalancer.")
        members, monitor = spec.pop("members", None) or [], spec.pop("healthmonitor", None)
        pool = build_pool(cloud, lb, {**spec, "loadbalancer_id": lb["id"]})
        pools_by_name[pool["name"]] = pool
        made.append(pool)
        made += [build_member(cloud, pool, dict(member)) for member in members]
        if monitor:
            made.append(build_monitor(cloud, pool, {**monitor, "pool_id": pool["id"]}))
    for spec in listeners:
        ref = spec.pop("default_pool", None)
        if ref is not None:
            if ref.get("name") not in pools_by_name:
                name = ref.get("name")
                raise validation(f"Pool '{name}' was referenced but no full definition was found.")
            spec["default_pool_id"] = pools_by_name[ref["name"]]["id"]
        made.append(build_listener(cloud, lb, {**spec, "loadbalancer_id": lb["id"]}))
    return made


_KINDS = ("listeners", "pools", "members", "healthmonitors")


def _roll_back(cloud: Cloud, lb: Record) -> None:
    """Undo a failed single-call create: its records and its VIP port."""
    for record in subtree(cloud, lb["id"]):
        for kind in _KINDS:
            cloud.remove(kind, record["id"])
    cloud.remove("loadbalancers", lb["id"])
    release_vip(cloud, lb)


async def create(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="loadbalancer")
    project_id = owner_for(request, body)
    _validate(body)
    quotas.check(cloud, project_id, "loadbalancer")
    lb = _new_lb(cloud, project_id, body)
    _allocate_vip(cloud, lb, body, project_id)
    cloud.add("loadbalancers", lb, project_id)
    try:
        made = _graph(cloud, lb, body)
    except ApiError:
        _roll_back(cloud, lb)
        raise
    delay = float(cloud.profile.delays.lb_create)
    for record in [lb, *made]:
        transition(cloud, record, PENDING_CREATE, delay)
    return json_response({"loadbalancer": render_lb(cloud, lb)}, status=201)


# ---- read, update, delete ---------------------------------------------------------------------
def _lb(request: web.Request, key: str = "lb_id") -> Record:
    return lookup(cloud_of(request), "loadbalancers", request.match_info[key], scope(request))


async def list_(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    records = cloud.list("loadbalancers", scope(request))
    return list_response(request, "loadbalancers", records, lambda r: render_lb(cloud, r))


async def show(request: web.Request) -> web.Response:
    body = render_lb(cloud_of(request), _lb(request))
    return json_response({"loadbalancer": select_fields(body, request)})


def _ensure_state(lb: Record, allowed: tuple[str, ...]) -> None:
    if lb["provisioning_status"] not in allowed:
        raise pending_state(lb)


async def update(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    lb = _lb(request)
    body = changes(await read_json(request, wrapper="loadbalancer"), _UPDATABLE, "loadbalancer")
    _ensure_state(lb, (ACTIVE,))
    lb.update(body)
    transition(cloud, lb, PENDING_UPDATE, update_delay(cloud, lb))
    return json_response({"loadbalancer": render_lb(cloud, lb)})


async def delete(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    lb = _lb(request)
    cascade = request.query.get("cascade", "false").lower() in ("true", "1", "yes", "on")
    has_children = children(cloud, "listeners", "_lb_id", lb["id"]) or children(
        cloud, "pools", "_lb_id", lb["id"]
    )
    if has_children and not cascade:
        raise validation(f"Cannot delete Load Balancer {lb['id']} - it has children")
    _ensure_state(lb, (ACTIVE, "ERROR"))
    delay = delete_delay(cloud, float(cloud.profile.delays.lb_delete))
    for record in [lb, *subtree(cloud, lb["id"])]:
        cloud.cancel_pending(record)
        transition(cloud, record, PENDING_DELETE, delay)
    return no_content()


async def failover(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    lb = _lb(request)
    _ensure_state(lb, (ACTIVE,))
    transition(cloud, lb, PENDING_UPDATE, update_delay(cloud, lb))
    return web.Response(status=202)


async def status(request: web.Request) -> web.Response:
    return json_response(status_tree(cloud_of(request), _lb(request)))


async def stats(request: web.Request) -> web.Response:
    _lb(request)
    return json_response({"stats": dict(_STATS)})


def providers_body() -> dict[str, Any]:
    return {"providers": [{"name": n, "description": d} for n, d in PROVIDERS.items()]}
