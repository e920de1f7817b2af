"""Nova servers: boot (ports, quotas, placement, faults), show, list, update, delete.

A server boots in BUILD/spawning and becomes ACTIVE after ``delays.server_boot`` cloud seconds,
or ERROR with a ``fault`` when a ``faults.server_errors`` entry picks it. Deleting shows
DELETED/deleting until ``delays.server_delete`` (x ``slow_delete_factor``) has passed, then 404.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from simulator import neutron, quotas
from simulator.core import GONE, ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, project_of, read_json
from simulator.nova_boot import BootRequest, parse_boot
from simulator.nova_common import is_admin, later_iso, links, now_iso, scope
from simulator.nova_placement import boot_fault, host_id, pick_host
from simulator.nova_server_groups import remove_member
from simulator.nova_server_view import Wiring, matcher, page, render, render_brief


def get_server(request: web.Request) -> Record:
    """The addressed server (any project for the admin); Nova's 404 otherwise."""
    server_id = request.match_info["server_id"]
    server = cloud_of(request).find("servers", server_id, scope(request))
    if server is None:
        raise ApiError(404, f"Instance {server_id} could not be found.")
    return server


def server_for_address(cloud: Cloud, ip: str) -> Record | None:
    """The server that has a port with fixed IP ``ip``, or None."""
    for port in cloud.table("ports").values():
        if any(f.get("ip_address") == ip for f in port.get("fixed_ips", [])):
            server = cloud.table("servers").get(str(port.get("device_id")))
            if server is not None:
                return server
    return None


# ---- boot ---------------------------------------------------------------------------------------
def _check_quota(cloud: Cloud, project_id: str, flavor: Record) -> None:
    quotas.check(cloud, project_id, "instances", 1)
    quotas.check(cloud, project_id, "cores", int(flavor["vcpus"]))
    quotas.check(cloud, project_id, "ram", int(flavor["ram"]))


def _new_record(request: web.Request, boot: BootRequest, host: str | None) -> Record:
    cloud, project_id, stamp = cloud_of(request), project_of(request), now_iso()
    flavor = boot.flavor
    number = cloud.serial()
    return {
        "id": cloud.new_id(),
        "name": boot.name,
        "status": "BUILD",
        "tenant_id": project_id,
        "user_id": str(request["user_id"]),
        "created": stamp,
        "updated": stamp,
        "addresses": {},
        "key_name": boot.key_name,
        "metadata": dict(boot.metadata),
        "tags": list(boot.tags),
        "security_groups": [],
        "hostId": host_id(project_id, host or ""),
        "flavor": {
            "original_name": flavor["name"],
            "vcpus": flavor["vcpus"],
            "ram": flavor["ram"],
            "disk": flavor["disk"],
            "ephemeral": flavor["OS-FLV-EXT-DATA:ephemeral"],
            "swap": flavor["swap"],
            "extra_specs": dict(flavor["extra_specs"]),
        },
        "OS-EXT-STS:task_state": "spawning",
        "OS-EXT-STS:vm_state": "building",
        "OS-EXT-STS:power_state": 0,
        "OS-EXT-AZ:availability_zone": "nova",
        "OS-SRV-USG:launched_at": None,
        "OS-SRV-USG:terminated_at": None,
        "OS-DCF:diskConfig": boot.disk_config,
        "accessIPv4": "",
        "accessIPv6": "",
        "progress": 0,
        "config_drive": "True" if boot.config_drive else "",
        "locked": False,
        "locked_reason": None,
        "description": boot.description,
        "os-extended-volumes:volumes_attached": [],
        "trusted_image_certificates": None,
        "OS-EXT-SRV-ATTR:host": host,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": host,
        "OS-EXT-SRV-ATTR:instance_name": f"instance-{number:08x}",
        "OS-EXT-SRV-ATTR:reservation_id": f"r-{secrets.token_hex(4)}",
        "OS-EXT-SRV-ATTR:launch_index": 0,
        "OS-EXT-SRV-ATTR:hostname": boot.hostname,
        "OS-EXT-SRV-ATTR:kernel_id": "",
        "OS-EXT-SRV-ATTR:ramdisk_id": "",
        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
        "_number": number,
        "_image_id": boot.image["id"],
        "_flavor_id": flavor["id"],
        "_user_data": boot.user_data,
        "_host": host,
        "_group_id": boot.group_id,
        "_security_group_names": list(boot.security_group_names),
        "_nova_ports": [],
        "_attached_ports": [],
    }


def _plug_ports(cloud: Cloud, server: Record, boot: BootRequest, project_id: str) -> None:
    """Create (or bind) the server's ports; on failure remove what was made, then re-raise."""
    binding = {"binding:host_id": server["_host"] or ""}
    try:
        for network_id, fixed_ips in boot.networks:
            port = neutron.create_port(
                cloud,
                project_id,
                network_id=network_id,
                device_id=server["id"],
                device_owner="compute:nova",
                security_group_ids=boot.security_group_ids,
                fixed_ips=fixed_ips,
                extra=binding,
            )
            server["_nova_ports"].append(port["id"])
        for port_id in boot.port_ids:
            neutron.update_port(
                cloud,
                port_id,
                {"device_id": server["id"], "device_owner": "compute:nova", **binding},
            )
            server["_attached_ports"].append(port_id)
    except ApiError as exc:
        _unplug_ports(cloud, server)
        if exc.status == 409 and exc.kind == "OverQuota":
            raise ApiError(403, "Maximum number of ports exceeded", kind="Forbidden") from exc
        raise ApiError(400, exc.message) from exc


def _unplug_ports(cloud: Cloud, server: Record) -> None:
    """Delete the ports Nova made; hand pre-existing ones back unbound."""
    for port_id in server["_nova_ports"]:
        neutron.delete_port(cloud, port_id)
    for port_id in server["_attached_ports"]:
        if port_id in cloud.table("ports"):
            neutron.update_port(
                cloud, port_id, {"device_id": "", "device_owner": "", "binding:host_id": ""}
            )
    server["_nova_ports"], server["_attached_ports"] = [], []


def _schedule_boot(request: web.Request, server: Record) -> None:
    cloud = cloud_of(request)
    boot_seconds = cloud.profile.delays.server_boot
    done = later_iso(cloud, boot_seconds)
    fault = boot_fault(request, server["name"], server["_host"])
    if fault is None:
        cloud.schedule(
            server,
            boot_seconds,
            {
                "status": "ACTIVE",
                "OS-EXT-STS:vm_state": "active",
                "OS-EXT-STS:task_state": None,
                "OS-EXT-STS:power_state": 1,
                "progress": 100,
                "OS-SRV-USG:launched_at": done,
                "updated": done,
            },
        )
        return
    code, message = fault
    cloud.schedule(
        server,
        boot_seconds,
        {
            "status": "ERROR",
            "OS-EXT-STS:vm_state": "error",
            "OS-EXT-STS:task_state": None,
            "updated": done,
            "fault": {"code": code, "message": message, "created": done},
        },
    )


async def create_server(request: web.Request) -> web.Response:
    cloud, project_id = cloud_of(request), project_of(request)
    boot = await parse_boot(request)
    _check_quota(cloud, project_id, boot.flavor)
    group = boot.group
    host = pick_host(cloud, group)
    server = _new_record(request, boot, host)
    cloud.add("servers", server, project_id)
    try:
        _plug_ports(cloud, server, boot, project_id)
    except ApiError:
        cloud.remove("servers", server["id"])
        raise
    if group is not None:
        group["members"].append(server["id"])
    _schedule_boot(request, server)
    body = {
        "id": server["id"],
        "links": links(request, "servers", server["id"]),
        "OS-DCF:diskConfig": server["OS-DCF:diskConfig"],
        "security_groups": [{"name": n} for n in boot.security_group_names],
        "adminPass": secrets.token_urlsafe(9),
    }
    return json_response(
        {"server": body}, status=202, headers={"Location": body["links"][0]["href"]}
    )


# ---- read, update, delete -----------------------------------------------------------------------
def _listable(request: web.Request) -> list[Record]:
    query = request.query
    # Like Nova: any all_tenants value but an explicit false asks for every project.
    all_tenants = query.get("all_tenants", "0").lower() not in ("0", "false", "no", "off")
    project = query.get("project_id") or query.get("tenant_id")
    cloud = cloud_of(request)
    if is_admin(request) and (all_tenants or project):
        servers = cloud.list("servers", project or None)
    else:
        servers = cloud.list("servers", project_of(request))
    match = matcher(request, Wiring.of(cloud))
    servers = [s for s in servers if match(s)]
    return sorted(servers, key=lambda s: s["_number"], reverse=True)


async def list_servers(request: web.Request) -> web.Response:
    """GET /servers and /servers/detail."""
    detail = request.match_info.get("detail", "") == "/detail"
    cloud = cloud_of(request)
    chosen, next_link = page(request, _listable(request))
    wiring = Wiring.of(cloud)
    rendered = [render(request, wiring, s) if detail else render_brief(request, s) for s in chosen]
    body: Record = {"servers": rendered}
    if next_link is not None:
        body["servers_links"] = [next_link]
    return json_response(body)


async def show_server(request: web.Request) -> web.Response:
    server = get_server(request)
    return json_response({"server": render(request, Wiring.of(cloud_of(request)), server)})


async def update_server(request: web.Request) -> web.Response:
    body = await read_json(request, wrapper="server")
    server = get_server(request)
    allowed = {"name", "description", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(
            400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)"
        )
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise ApiError(400, "Invalid input for field/attribute name.")
    server.update(body)
    server["updated"] = now_iso()
    return json_response({"server": render(request, Wiring.of(cloud_of(request)), server)})


async def delete_server(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    server = get_server(request)
    if server["status"] == "DELETED":
        return web.Response(status=204)
    if server["locked"] and not is_admin(request):
        raise ApiError(409, f"Instance {server['id']} is locked")
    cloud.cancel_pending(server)
    # Nova frees the network (ports) at the start of the delete, then destroys the instance.
    _unplug_ports(cloud, server)
    remove_member(cloud, server["id"])
    server.update({"status": "DELETED", "OS-EXT-STS:task_state": "deleting", "updated": now_iso()})
    delay = cloud.profile.delays.server_delete * cloud.profile.faults.slow_delete_factor
    cloud.schedule(server, delay, {GONE: True})
    return web.Response(status=204)
