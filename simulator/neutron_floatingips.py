"""Neutron floating IPs: addresses from the external network, bound to ports through a router.

Association needs what a real cloud needs: a router with an interface on the port's subnet and
its gateway on the floating IP's network; otherwise Neutron's 404 "External network X is not
reachable from subnet Y" (the usual surprise when a router interface is missing).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator.core import Cloud, Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
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
from simulator.neutron_ipam import allocate, bad_request, claim
from simulator.neutron_routers import router_for

_UPDATABLE = {"port_id", "fixed_ip_address", "description"}


def _external_subnet(cloud: Cloud, network: Record, subnet_id: Any) -> Record:
    for sid in network["subnets"]:
        subnet = cloud.table("subnets").get(sid)
        if subnet is not None and subnet["ip_version"] == 4 and subnet_id in (None, sid):
            return subnet
    raise bad_request(
        f"Bad floatingip request: Network {network['id']} does not contain any IPv4 subnet"
    )


def _address(cloud: Cloud, network: Record, body: Record) -> str:
    subnet = _external_subnet(cloud, network, body.get("subnet_id"))
    wanted = body.get("floating_ip_address")
    return claim(cloud, subnet, wanted) if wanted else allocate(cloud, subnet)


def _fixed_ip(port: Record, wanted: Any) -> Record:
    candidates = [ip for ip in port["fixed_ips"] if ":" not in ip["ip_address"]]
    if wanted:
        candidates = [ip for ip in candidates if ip["ip_address"] == wanted]
        if not candidates:
            raise bad_request(
                f"Bad floatingip request: Port {port['id']} does not have fixed ip {wanted}."
            )
    if not candidates:
        raise bad_request(
            f"Bad floatingip request: Port {port['id']} does not have any IPv4 address, "
            "cannot be associated with a floating IP."
        )
    chosen: Record = candidates[0]
    return chosen


def _associate(
    cloud: Cloud, fip: Record, port_id: str, fixed_ip_address: Any, project_id: str | None
) -> None:
    port = cloud.find("ports", port_id, project_id)
    if port is None:
        raise not_found("Port", port_id)
    fixed = _fixed_ip(port, fixed_ip_address)
    network_id = fip["floating_network_id"]
    router = router_for(cloud, fixed["subnet_id"], network_id)
    if router is None:
        raise neutron_error(
            404,
            "ExternalGatewayForFloatingIPNotFound",
            f"External network {network_id} is not reachable from subnet {fixed['subnet_id']}.  "
            f"Therefore, cannot associate Port {port_id} with a Floating IP.",
        )
    for other in cloud.list("floatingips", None, lambda f: f.get("port_id") == port_id):
        if other["id"] != fip["id"] and other["fixed_ip_address"] == fixed["ip_address"]:
            raise neutron_error(
                409,
                "FloatingIPPortAlreadyAssociated",
                f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with "
                f"port {port_id} using fixed IP {fixed['ip_address']}, as that fixed IP already "
                f"has a floating IP on external network {network_id}.",
            )
    cloud.cancel_pending(fip)
    fip.update(
        {
            "port_id": port_id,
            "fixed_ip_address": fixed["ip_address"],
            "router_id": router["id"],
            "port_details": {
                "name": port["name"],
                "network_id": port["network_id"],
                "mac_address": port["mac_address"],
                "admin_state_up": port["admin_state_up"],
                "status": port["status"],
                "device_id": port["device_id"],
                "device_owner": port["device_owner"],
            },
        }
    )
    cloud.schedule(fip, cloud.profile.delays.fip_active, {"status": "ACTIVE"})


def _disassociate(cloud: Cloud, fip: Record) -> None:
    cloud.cancel_pending(fip)
    fip.update(
        {
            "port_id": None,
            "fixed_ip_address": None,
            "router_id": None,
            "port_details": None,
            "status": "DOWN",
        }
    )


# ---- HTTP handlers ----------------------------------------------------------------------------
def _fip(request: web.Request) -> Record:
    fip_id = request.match_info["id"]
    fip = cloud_of(request).find("floatingips", fip_id, scope(request))
    if fip is None:
        raise not_found("Floating IP", fip_id, kind="FloatingIPNotFound")
    return fip


async def list_fips(request: web.Request) -> web.Response:
    return list_response(
        request, "floatingips", cloud_of(request).list("floatingips", scope(request))
    )


async def create_fip(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="floatingip")
    network_id = str(body.get("floating_network_id") or "")
    network = find_visible(cloud, "networks", network_id, scope(request))
    if network is None:
        raise not_found("Network", network_id)
    if not network.get("router:external"):
        raise bad_request(
            f"Bad floatingip request: Network {network_id} is not a valid external network."
        )
    project_id = owner_for(request, body)
    check_quota(cloud, project_id, "floatingip")
    fip = new_record(
        cloud,
        "floatingips",
        project_id,
        {
            "floating_network_id": network_id,
            "floating_ip_address": _address(cloud, network, body),
            "fixed_ip_address": None,
            "port_id": None,
            "router_id": None,
            "status": "DOWN",
            "port_details": None,
            "qos_policy_id": None,
            "port_forwardings": [],
        },
    )
    fip["description"] = str(body.get("description") or "")
    fip["tags"] = list(body.get("tags") or [])
    if body.get("port_id"):
        try:
            _associate(
                cloud, fip, str(body["port_id"]), body.get("fixed_ip_address"), scope(request)
            )
        except Exception:
            cloud.remove("floatingips", fip["id"])
            raise
    return json_response({"floatingip": public(fip)}, status=201)


async def show_fip(request: web.Request) -> web.Response:
    return show_response(request, "floatingip", _fip(request))


async def update_fip(request: web.Request) -> web.Response:
    cloud, fip = cloud_of(request), _fip(request)
    body = updatable(await read_json(request, wrapper="floatingip"), _UPDATABLE, "floatingip")
    if "description" in body:
        fip["description"] = str(body["description"] or "")
    if "port_id" in body:
        if body["port_id"]:
            _associate(
                cloud, fip, str(body["port_id"]), body.get("fixed_ip_address"), scope(request)
            )
        else:
            _disassociate(cloud, fip)
    return json_response({"floatingip": public(touch(fip))})


async def delete_fip(request: web.Request) -> web.Response:
    cloud_of(request).remove("floatingips", _fip(request)["id"])
    return no_content()


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "floatingips", list=list_fips, create=create_fip, show=show_fip, update=update_fip,
        delete=delete_fip,
    )  # fmt: skip
