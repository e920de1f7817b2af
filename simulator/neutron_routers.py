"""Neutron routers: external gateways, interfaces (subnet or port) and extra routes."""

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
from simulator.neutron_ports import create_port, delete_port, update_port

_UPDATABLE = {"name", "description", "admin_state_up", "external_gateway_info", "routes"}


def interfaces(cloud: Cloud, router_id: str) -> list[Record]:
    return cloud.list(
        "ports",
        None,
        lambda p: p["device_id"] == router_id and p["device_owner"] == ROUTER_INTERFACE_OWNER,
    )


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
def _interface_body(router: Record, port: Record) -> Record:
    subnet_ids = [ip["subnet_id"] for ip in port["fixed_ips"]]
    return {
        "id": router["id"],
        "tenant_id": router["tenant_id"],
        "project_id": router["project_id"],
        "port_id": port["id"],
        "network_id": port["network_id"],
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
        "tags": [],
    }


def _add_interface(cloud: Cloud, router: Record, body: Record, project_id: str | None) -> Record:
    if bool(body.get("subnet_id")) == bool(body.get("port_id")):
        raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
    if body.get("port_id"):
        port = cloud.find("ports", str(body["port_id"]), project_id)
        if port is None:
            raise not_found("Port", str(body["port_id"]))
        if port["device_id"]:
            raise neutron_error(
                409,
                "PortInUse",
                f"Unable to complete operation on port {port['id']} for network "
                f"{port['network_id']}. Port already has an attached device {port['device_id']}.",
            )
        return update_port(
            cloud, port["id"], {"device_id": router["id"], "device_owner": ROUTER_INTERFACE_OWNER}
        )
    subnet = find_visible(cloud, "subnets", str(body["subnet_id"]), project_id)
    if subnet is None:
        raise not_found("Subnet", str(body["subnet_id"]))
    if not subnet.get("gateway_ip"):
        raise bad_request("Bad router request: Subnet for router interface must have a gateway IP.")
    for port in interfaces(cloud, router["id"]):
        if any(ip["subnet_id"] == subnet["id"] for ip in port["fixed_ips"]):
            raise bad_request(
                f"Bad router request: Router already has a port on subnet {subnet['id']}."
            )
    return create_port(
        cloud,
        router["_project_id"],
        network_id=subnet["network_id"],
        device_id=router["id"],
        device_owner=ROUTER_INTERFACE_OWNER,
        fixed_ips=[{"subnet_id": subnet["id"], "ip_address": subnet["gateway_ip"]}],
    )


def _remove_interface(cloud: Cloud, router: Record, body: Record) -> Record:
    ports = interfaces(cloud, router["id"])
    if body.get("port_id"):
        found = [p for p in ports if p["id"] == body["port_id"]]
        if not found:
            raise neutron_error(
                404,
                "RouterInterfaceNotFound",
                f"Router {router['id']} does not have an interface with id {body['port_id']}",
            )
    else:
        found = [
            p
            for p in ports
            if any(ip["subnet_id"] == body.get("subnet_id") for ip in p["fixed_ips"])
        ]
        if not found:
            raise neutron_error(
                404,
                "RouterInterfaceNotFoundForSubnet",
                f"Router {router['id']} has no interface on subnet {body.get('subnet_id')}",
            )
    port = found[0]
    subnet_ids = {ip["subnet_id"] for ip in port["fixed_ips"]}
    for fip in cloud.list("floatingips", None, lambda f: f.get("router_id") == router["id"]):
        bound = cloud.table("ports").get(fip["port_id"] or "")
        if bound is not None and subnet_ids & {ip["subnet_id"] for ip in bound["fixed_ips"]}:
            raise neutron_error(
                409,
                "RouterInterfaceInUseByFloatingIP",
                f"Router interface for subnet {sorted(subnet_ids)[0]} on router {router['id']} "
                "cannot be deleted, as it is required by one or more floating IPs.",
            )
    delete_port(cloud, port["id"])
    return port


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
        port = _add_interface(cloud, router, body, scope(request))
    else:
        port = _remove_interface(cloud, router, body)
    touch(router)
    return json_response(_interface_body(router, port))


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "routers", list=list_routers, create=create_router, show=show_router,
        update=update_router, delete=delete_router,
    )  # fmt: skip
    actions = "add_router_interface|remove_router_interface|add_extraroutes|remove_extraroutes"
    path = f"{PREFIX}/routers/{{id}}/{{action:{actions}}}"
    app.router.add_route("PUT", path, router_action, name="network.routers.action")
