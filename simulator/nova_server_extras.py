"""Server sub-resources: tags, metadata, interfaces; plus the project's absolute limits."""

from __future__ import annotations

from aiohttp import web

from simulator import quotas
from simulator.core import ApiError, Record
from simulator.http import cloud_of, json_response, project_of, read_json
from simulator.nova_boot import MAX_METADATA_ITEMS, MAX_TAGS, check_metadata, check_tags
from simulator.nova_common import links, now_iso
from simulator.nova_server_view import server_ports
from simulator.nova_servers import get_server


def _touch(server: Record) -> None:
    server["updated"] = now_iso()


# ---- tags (2.26+) -------------------------------------------------------------------------------
def _tag(request: web.Request) -> str:
    """The ``/tags/{tag}`` segment ('' for the collection itself)."""
    return request.match_info.get("tag", "").lstrip("/")


async def tags(request: web.Request) -> web.Response:
    """GET/PUT/DELETE /servers/{id}/tags and /servers/{id}/tags/{tag}."""
    server, tag = get_server(request), _tag(request)
    if not tag:
        if request.method == "GET":
            return json_response({"tags": list(server["tags"])})
        if request.method == "DELETE":
            server["tags"] = []
            _touch(server)
            return web.Response(status=204)
        server["tags"] = check_tags((await read_json(request)).get("tags"))
        _touch(server)
        return json_response({"tags": list(server["tags"])})
    if request.method == "GET":
        if tag not in server["tags"]:
            raise ApiError(404, f"Tag {tag} could not be found for instance {server['id']}.")
        return web.Response(status=204)
    if request.method == "DELETE":
        if tag not in server["tags"]:
            raise ApiError(404, f"Tag {tag} could not be found for instance {server['id']}.")
        server["tags"].remove(tag)
        _touch(server)
        return web.Response(status=204)
    if tag in server["tags"]:
        return web.Response(status=204)
    if len(server["tags"]) >= MAX_TAGS:
        raise ApiError(
            400, f"Instance {server['id']} already has the maximum number of tags ({MAX_TAGS})."
        )
    server["tags"] = [*server["tags"], *check_tags([tag])]
    _touch(server)
    location = f"{links(request, 'servers', server['id'])[0]['href']}/tags/{tag}"
    return web.Response(status=201, headers={"Location": location})


# ---- metadata -----------------------------------------------------------------------------------
def _key(request: web.Request) -> str:
    return request.match_info.get("key", "").lstrip("/")


async def _set_item(request: web.Request, server: Record, key: str) -> web.Response:
    meta = (await read_json(request)).get("meta")
    if not isinstance(meta, dict) or len(meta) != 1 or key not in meta:
        raise ApiError(400, "Request body and URI mismatch")
    items = {**server["metadata"], **check_metadata(meta)}
    if len(items) > MAX_METADATA_ITEMS:
        raise ApiError(403, f"Maximum number of metadata items exceeds {MAX_METADATA_ITEMS}")
    server["metadata"] = items
    _touch(server)
    return json_response({"meta": {key: items[key]}})


async def metadata(request: web.Request) -> web.Response:
    """GET/PUT/POST /servers/{id}/metadata and GET/PUT/DELETE /servers/{id}/metadata/{key}."""
    server, key = get_server(request), _key(request)
    if key:
        if request.method == "PUT":
            return await _set_item(request, server, key)
        if key not in server["metadata"]:
            raise ApiError(404, "Metadata item was not found")
        if request.method == "DELETE":
            del server["metadata"][key]
            _touch(server)
            return web.Response(status=204)
        return json_response({"meta": {key: server["metadata"][key]}})
    if request.method == "GET":
        return json_response({"metadata": dict(server["metadata"])})
    given = check_metadata((await read_json(request)).get("metadata"))
    merged = given if request.method == "PUT" else {**server["metadata"], **given}
    if len(merged) > MAX_METADATA_ITEMS:
        raise ApiError(403, f"Maximum number of metadata items exceeds {MAX_METADATA_ITEMS}")
    server["metadata"] = merged
    _touch(server)
    return json_response({"metadata": dict(merged)})


# ---- interfaces ---------------------------------------------------------------------------------
def _attachment(port: Record) -> Record:
    return {
        "port_state": port.get("status", "DOWN"),
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port.get("mac_address", ""),
        "fixed_ips": [
            {"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}
            for f in port.get("fixed_ips", [])
        ],
    }


async def list_interfaces(request: web.Request) -> web.Response:
    server = get_server(request)
    ports = server_ports(cloud_of(request), server["id"])
    return json_response({"interfaceAttachments": [_attachment(p) for p in ports]})


async def show_interface(request: web.Request) -> web.Response:
    server = get_server(request)
    port_id = request.match_info["port_id"]
    for port in server_ports(cloud_of(request), server["id"]):
        if port["id"] == port_id:
            return json_response({"interfaceAttachment": _attachment(port)})
    raise ApiError(404, f"Port {port_id} is not attached")


# ---- limits -------------------------------------------------------------------------------------
async def show_limits(request: web.Request) -> web.Response:
    cloud, project_id = cloud_of(request), project_of(request)
    quota = quotas.limits(cloud, project_id)
    groups = cloud.list("server_groups", project_id)
    absolute = {
        "maxTotalInstances": quota.instances,
        "maxTotalCores": quota.cores,
        "maxTotalRAMSize": quota.ram,
        "maxServerMeta": MAX_METADATA_ITEMS,
        "maxImageMeta": MAX_METADATA_ITEMS,
        "maxPersonality": 5,
        "maxPersonalitySize": 10240,
        "maxTotalKeypairs": 100,
        "maxServerGroups": 10,
        "maxServerGroupMembers": 10,
        "maxSecurityGroups": -1,
        "maxSecurityGroupRules": -1,
        "maxTotalFloatingIps": -1,
        "totalInstancesUsed": quotas.usage(cloud, project_id, "instances"),
        "totalCoresUsed": quotas.usage(cloud, project_id, "cores"),
        "totalRAMUsed": quotas.usage(cloud, project_id, "ram"),
        "totalServerGroupsUsed": sum(1 for g in groups if g["_project_id"] == project_id),
        "totalSecurityGroupsUsed": 0,
        "totalFloatingIpsUsed": 0,
    }
    return json_response({"limits": {"rate": [], "absolute": absolute}})
