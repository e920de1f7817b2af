"""Neutron routers: external gateways and extra routes (interfaces: neutron_router_interfaces)."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from simulator.core import Cloud, Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
    PREFIX,
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNER,
    add_collection,
    check_quota,
    find_visible,
    list_response,
    neutron_error,
    new_record,
    not_found,
    owner_for,
    scope,
    show_response,
    touch,
    updatable,
)
from simulator.neutron_ipam import bad_request
from simulator.neutron_ports import create_port, delete_port
from simulator.neutron_router_interfaces import (
    add_interface,
    interface_body,
    interfaces,
    remove_interface,
)

_UPDATABLE = {"name", "description", "admin_state_up", "external_gateway_info", "routes"}


def router_for(cloud: Cloud, subnet_id: str, external_network_id: str) -> Record | None:
    """A router joining ``subnet_id`` to ``external_network_id``: what a floating IP needs."""
    for port in cloud.list("ports", None, lambda p: p["device_owner"] == ROUTER_INTERFACE_OWNER):
        if any(ip["subnet_id"] == subnet_id for ip in port["fixed_ips"]):
            router = cloud.table("routers").get(port["device_id"])
            gateway = (router or {}).get("external_gateway_info") or {}
            if router is not None and gateway.get("network_id") == external_network_id:
                return router
    return None


# ---- the external gateway -------------------------------------------------------------------
def _gateway_port(cloud: Cloud, router_id: str) -> Record | None:
    for port in cloud.list("ports", None, lambda p: p["device_id"] == router_id):
        if port["device_owner"] == ROUTER_GATEWAY_OWNER:
            return port
    return None


def _clear_gateway(cloud: Cloud, router: Record) -> None:
    gateway = router.get("external_gateway_info") or {}
    if gateway and cloud.list("floatingips", None, lambda f: f.get("router_id") == router["id"]):
        raise neutron_error(
            409,
            "RouterExternalGatewayInUseByFloatingIp",
            f"Gateway cannot be updated for router {router['id']}, since a gateway to external "
            f"network {gateway['network_id']} is required by one or more floating IPs.",
        )
    port = _gateway_port(cloud, router["id"])
    if port is not None:
        delete_port(cloud, port["id"])
    router["external_gateway_info"] = None


def _set_gateway(cloud: Cloud, router: Record, info: Any) -> None:
    if not info:
        _clear_gateway(cloud, router)
        return
    network_id = str(info.get("network_id") or "")
    network = find_visible(cloud, "networks", network_id, router["_project_id"])
    if network is None:
        raise not_found("Network", network_id)
    if not network.get("router:external"):
        raise bad_request(f"Bad router request: Network {network_id} is not an external network.")
    current = router.get("external_gateway_info") or {}
    if current.get("network_id") != network_id:
        _clear_gateway(cloud, router)
        port = create_port(
            cloud,
            router["_project_id"],
            network_id=network_id,
            device_id=router["id"],
            device_owner=ROUTER_GATEWAY_OWNER,
            fixed_ips=info.get("external_fixed_ips") or None,
            count_quota=False,
        )
        current = {"network_id": network_id, "external_fixed_ips": port["fixed_ips"]}
    current["enable_snat"] = bool(info.get("enable_snat", current.get("enable_snat", True)))
    router["external_gateway_info"] = current


def _check_routes(cloud: Cloud, router: Record, routes: Any) -> list[Record]:
    if not isinstance(routes, list):
        raise bad_request("Invalid input for routes.")
    subnets = [
        ipaddress.ip_network(cloud.table("subnets")[ip["subnet_id"]]["cidr"])
        for port in interfaces(cloud, router["id"])
        for ip in port["fixed_ips"]
        if ip["subnet_id"] in cloud.table("subnets")
    ]
    for route in routes:
        hop = ipaddress.ip_address(str(route.get("nexthop")))
        if not any(hop in net for net in subnets):
            raise bad_request(
                f"Invalid format for routes: {route}, the nexthop is not connected with router"
            )
    return [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in routes]


# ---- interfaces --------------------------------------------------------------------------
# ---- HTTP handlers -----------------------------------------------------------------------
def _router(request: web.Request) -> Record:
    router_id = request.match_info["id"]
    router = cloud_of(request).find("routers", router_id, scope(request))
    if router is None:
        raise not_found("Router", router_id)
    return router


async def list_routers(request: web.Request) -> web.Response:
    return list_response(request, "routers", cloud_of(request).list("routers", scope(request)))


async def create_router(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="router")
    project_id = owner_for(request, body)
    check_quota(cloud, project_id, "router")
    router = new_record(
        cloud,
        "routers",
        project_id,
        {
            "name": str(body.get("name") or ""),
            "status": "ACTIVE",
            "admin_state_up": bool(body.get("admin_state_up", True)),
            "external_gateway_info": None,
            "routes": [],
            "availability_zones": ["nova"],
            "availability_zone_hints": [],
            "flavor_id": None,
        },
    )
    router["description"] = str(body.get("description") or "")
    router["tags"] = list(body.get("tags") or [])
    try:
        _set_gateway(cloud, router, body.get("external_gateway_info"))
    except Exception:
        cloud.remove("routers", router["id"])
        raise
    return json_response({"router": public(router)}, status=201)


async def show_router(request: web.Request) -> web.Response:
    return show_response(request, "router", _router(request))


async def update_router(request: web.Request) -> web.Response:
    cloud, router = cloud_of(request), _router(request)
    body = dict(updatable(await read_json(request, wrapper="router"), _UPDATABLE, "router"))
    if "external_gateway_info" in body:
        _set_gateway(cloud, router, body.pop("external_gateway_info"))
    if "routes" in body:
        body["routes"] = _check_routes(cloud, router, body["routes"])
    router.update(body)
    return json_response({"router": public(touch(router))})


async def delete_router(request: web.Request) -> web.Response:
    cloud, router = cloud_of(request), _router(request)
    if interfaces(cloud, router["id"]):
        raise neutron_error(409, "RouterInUse", f"Router {router['id']} still has ports")
    _clear_gateway(cloud, router)
    cloud.remove("routers", router["id"])
    return no_content()


async def router_action(request: web.Request) -> web.Response:
    """PUT add/remove_router_interface and add/remove_extraroutes."""
    cloud, router = cloud_of(request), _router(request)
    action = request.match_info["action"]
    if action.endswith("extraroutes"):
        routes = _check_routes(
            cloud, router, (await read_json(request, wrapper="router")).get("routes")
        )
        current = [r for r in router["routes"] if r not in routes]
        router["routes"] = current + routes if action.startswith("add") else current
        return json_response({"router": public(touch(router))})
    body = await read_json(request)
    if action == "add_router_interface":
        port = add_interface(cloud, router, body, scope(request))
    else:
        port = remove_interface(cloud, router, body)
    touch(router)
    return json_response(interface_body(router, port))


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "routers", list=list_routers, create=create_router, show=show_router,
        update=update_router, delete=delete_router,
    )  # fmt: skip
    actions = "add_router_interface|remove_router_interface|add_extraroutes|remove_extraroutes"
    path = f"{PREFIX}/routers/{{id}}/{{action:{actions}}}"
    app.router.add_route("PUT", path, router_action, name="network.routers.action")
