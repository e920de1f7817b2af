"""Octavia pool members and health monitors: validation, creation and the CRUD handlers."""

from __future__ import annotations

from aiohttp import web

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.octavia_common import (
    PENDING_CREATE,
    PENDING_DELETE,
    PENDING_UPDATE,
    boolean,
    changes,
    children,
    choice,
    ensure_mutable,
    integer,
    ip_address,
    lock_for_child,
    lookup,
    monitor_of,
    new_record,
    not_found,
    scope,
)
from simulator.octavia_listing import list_response, select_fields
from simulator.octavia_status import render_member, render_monitor

MONITOR_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
_MEMBER_UPDATABLE = ("weight", "backup", "monitor_address", "monitor_port")
_MONITOR_UPDATABLE = (
    "delay", "timeout", "max_retries", "max_retries_down", "http_method", "url_path",
    "expected_codes", "http_version", "domain_name",
)  # fmt: skip


def _lb_of(cloud: Cloud, pool: Record) -> Record:
    return cloud.table("loadbalancers")[pool["_lb_id"]]


# ---- members -----------------------------------------------------------------------------------
def build_member(cloud: Cloud, pool: Record, body: Record) -> Record:
    """Validate ``body`` and add a PENDING_CREATE member to ``pool`` (no state change yet)."""
    address = ip_address(body, "address")
    port = integer(body, "protocol_port", 1, 65535)
    if port is None:
        raise ApiError(400, "Invalid input for field/attribute protocol_port. Value: 'None'. "
                       "Mandatory field missing.")  # fmt: skip
    for other in children(cloud, "members", "_pool_id", pool["id"]):
        if other["address"] == address and other["protocol_port"] == port:
            raise ApiError(409, f"Another member on this pool is already using ip {address} "
                           f"on protocol_port {port}")  # fmt: skip
    subnet_id = body.get("subnet_id")
    if subnet_id is not None and cloud.find("subnets", str(subnet_id)) is None:
        raise ApiError(400, f"Subnet {subnet_id} not found.")
    member = new_record(cloud, pool["project_id"], body)
    member.update(
        address=address, protocol_port=port, subnet_id=subnet_id,
        weight=integer(body, "weight", 0, 256, 1), backup=boolean(body, "backup", False),
        monitor_address=body.get("monitor_address"),
        monitor_port=integer(body, "monitor_port", 1, 65535), vnic_type="normal",
        _pool_id=pool["id"],
        # health checks can pass from then on (if a server answers at the address)
        _online_at=cloud.clock.now() + cloud.clock.real_seconds(cloud.profile.delays.member_online),
    )  # fmt: skip
    return cloud.add("members", member, pool["_project_id"])


def _pool(request: web.Request) -> Record:
    return lookup(cloud_of(request), "pools", request.match_info["pool_id"], scope(request))


def _member(request: web.Request) -> Record:
    pool = _pool(request)
    member_id = request.match_info["member_id"]
    member = cloud_of(request).find("members", member_id, scope(request))
    if member is None or member["_pool_id"] != pool["id"]:
        raise not_found("members", member_id)
    return member


async def create_member(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    pool = _pool(request)
    body = await read_json(request, wrapper="member")
    lb = _lb_of(cloud, pool)
    ensure_mutable(lb)
    member = build_member(cloud, pool, body)
    lock_for_child(cloud, lb, PENDING_CREATE, [member])
    return json_response({"member": render_member(cloud, member)}, status=201)


async def list_members(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    pool = _pool(request)
    records = cloud.list("members", scope(request), lambda m: m["_pool_id"] == pool["id"])
    return list_response(request, "members", records, lambda r: render_member(cloud, r))


async def show_member(request: web.Request) -> web.Response:
    body = render_member(cloud_of(request), _member(request))
    return json_response({"member": select_fields(body, request)})


async def update_member(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    member = _member(request)
    body = changes(await read_json(request, wrapper="member"), _MEMBER_UPDATABLE, "member")
    lb = _lb_of(cloud, cloud.table("pools")[member["_pool_id"]])
    ensure_mutable(lb)
    integer(body, "weight", 0, 256)
    integer(body, "monitor_port", 1, 65535)
    member.update(body)
    lock_for_child(cloud, lb, PENDING_UPDATE, [member])
    return json_response({"member": render_member(cloud, member)})


async def delete_member(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    member = _member(request)
    lb = _lb_of(cloud, cloud.table("pools")[member["_pool_id"]])
    lock_for_child(cloud, lb, PENDING_DELETE, [member])
    return no_content()


# ---- health monitors -------------------------------------------------------------------------
def build_monitor(cloud: Cloud, pool: Record, body: Record) -> Record:
    """Validate ``body`` and add a PENDING_CREATE health monitor on ``pool``."""
    kind = choice(body, "type", MONITOR_TYPES)
    fields: Record = {
        "type": kind,
        "delay": _required_int(body, "delay", 0, 2_147_483_647),
        "timeout": _required_int(body, "timeout", 0, 2_147_483_647),
        "max_retries": _required_int(body, "max_retries", 1, 10),
        "max_retries_down": integer(body, "max_retries_down", 1, 10, 3),
    }
    web_check = kind in ("HTTP", "HTTPS")
    fields["http_method"] = choice(body, "http_method", HTTP_METHODS, "GET") if web_check else None
    fields["url_path"] = body.get("url_path", "/" if web_check else None)
    fields["expected_codes"] = body.get("expected_codes", "200" if web_check else None)
    fields["http_version"] = body.get("http_version")
    fields["domain_name"] = body.get("domain_name")
    if monitor_of(cloud, pool["id"]) is not None:
        raise ApiError(409, "This pool already has a health monitor")
    monitor = new_record(cloud, pool["project_id"], body)
    monitor.update(fields, _pool_id=pool["id"])
    return cloud.add("healthmonitors", monitor, pool["_project_id"])


def _required_int(body: Record, field: str, low: int, high: int) -> int:
    value = integer(body, field, low, high)
    if value is None:
        raise ApiError(400, f"Invalid input for field/attribute {field}. Value: 'None'. "
                       "Mandatory field missing.")  # fmt: skip
    return int(value)


def _monitor(request: web.Request) -> Record:
    return lookup(
        cloud_of(request), "healthmonitors", request.match_info["monitor_id"], scope(request)
    )


async def create_monitor(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="healthmonitor")
    pool_id = body.get("pool_id")
    if not pool_id:
        raise ApiError(400, "Invalid input for field/attribute pool_id. Value: 'None'. "
                       "Mandatory field missing.")  # fmt: skip
    pool = lookup(cloud, "pools", str(pool_id), scope(request))
    lb = _lb_of(cloud, pool)
    ensure_mutable(lb)
    monitor = build_monitor(cloud, pool, body)
    lock_for_child(cloud, lb, PENDING_CREATE, [monitor])
    return json_response({"healthmonitor": render_monitor(cloud, monitor)}, status=201)


async def list_monitors(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    return list_response(
        request, "healthmonitors", cloud.list("healthmonitors", scope(request)),
        lambda r: render_monitor(cloud, r), lambda r: {"pool_id": r["_pool_id"]},
    )  # fmt: skip


async def show_monitor(request: web.Request) -> web.Response:
    body = render_monitor(cloud_of(request), _monitor(request))
    return json_response({"healthmonitor": select_fields(body, request)})


async def update_monitor(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    monitor = _monitor(request)
    body = changes(
        await read_json(request, wrapper="healthmonitor"), _MONITOR_UPDATABLE, "healthmonitor"
    )
    lb = _lb_of(cloud, cloud.table("pools")[monitor["_pool_id"]])
    ensure_mutable(lb)
    for field, low, high in (("delay", 0, 2_147_483_647), ("timeout", 0, 2_147_483_647),
                             ("max_retries", 1, 10), ("max_retries_down", 1, 10)):  # fmt: skip
        integer(body, field, low, high)
    monitor.update(body)
    lock_for_child(cloud, lb, PENDING_UPDATE, [monitor])
    return json_response({"healthmonitor": render_monitor(cloud, monitor)})


async def delete_monitor(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    monitor = _monitor(request)
    lb = _lb_of(cloud, cloud.table("pools")[monitor["_pool_id"]])
    lock_for_child(cloud, lb, PENDING_DELETE, [monitor])
    return no_content()
