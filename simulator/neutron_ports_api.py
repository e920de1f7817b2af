"""Neutron ports over HTTP: list, create, show, update and delete (the model is neutron_ports)."""

from __future__ import annotations

from aiohttp import web

from simulator.core import Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNER,
    add_collection,
    list_response,
    neutron_error,
    not_found,
    owner_for,
    scope,
    show_response,
)
from simulator.neutron_ipam import bad_request
from simulator.neutron_ports import create_port, delete_port, update_port

_UPDATABLE = {
    "name",
    "description",
    "admin_state_up",
    "device_id",
    "device_owner",
    "fixed_ips",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "mac_address",
    "binding:host_id",
    "binding:profile",
    "binding:vnic_type",
    "extra_dhcp_opts",
    "tags",
}
_SERVICE_OWNERS = (ROUTER_INTERFACE_OWNER, ROUTER_GATEWAY_OWNER)


def _port(request: web.Request) -> Record:
    port_id = request.match_info["id"]
    port = cloud_of(request).find("ports", port_id, scope(request))
    if port is None:
        raise not_found("Port", port_id)
    return port


async def list_ports(request: web.Request) -> web.Response:
    return list_response(request, "ports", cloud_of(request).list("ports", scope(request)))


async def create_port_handler(request: web.Request) -> web.Response:
    body = dict(await read_json(request, wrapper="port"))
    if not body.get("network_id"):
        raise bad_request("Invalid input for network_id. Reason: 'None' is not a valid UUID.")
    known = {
        "network_id",
        "name",
        "device_id",
        "device_owner",
        "security_groups",
        "fixed_ips",
        "description",
        "tags",
    }
    extra = {k: v for k, v in body.items() if k not in known | {"project_id", "tenant_id"}}
    port = create_port(
        cloud_of(request),
        owner_for(request, body),
        network_id=str(body["network_id"]),
        name=str(body.get("name") or ""),
        device_id=str(body.get("device_id") or ""),
        device_owner=str(body.get("device_owner") or ""),
        security_group_ids=body.get("security_groups"),
        fixed_ips=body.get("fixed_ips"),
        description=str(body.get("description") or ""),
        tags=body.get("tags"),
        extra=extra,
    )
    return json_response({"port": public(port)}, status=201)


async def show_port(request: web.Request) -> web.Response:
    return show_response(request, "port", _port(request))


async def update_port_handler(request: web.Request) -> web.Response:
    port = _port(request)
    body = await read_json(request, wrapper="port")
    bad = sorted(set(body) - _UPDATABLE)
    if bad:
        raise bad_request(f"Cannot update read-only attribute {bad[0]}")
    return json_response({"port": public(update_port(cloud_of(request), port["id"], body))})


async def delete_port_handler(request: web.Request) -> web.Response:
    port = _port(request)
    if port["device_owner"] in _SERVICE_OWNERS:
        raise neutron_error(
            409,
            "ServicePortInUse",
            f"Port {port['id']} cannot be deleted directly via the port API: "
            f"has device owner {port['device_owner']}.",
        )
    delete_port(cloud_of(request), port["id"])
    return no_content()


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "ports", list=list_ports, create=create_port_handler, show=show_port,
        update=update_port_handler, delete=delete_port_handler,
    )  # fmt: skip
