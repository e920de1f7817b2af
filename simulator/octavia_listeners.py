"""Octavia listeners and pools: validation, creation and the CRUD handlers.

Every change locks the parent load balancer (see ``octavia_common.lock_for_child``).
"""

from __future__ import annotations

from aiohttp import web

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.octavia_common import (
    PENDING_CREATE,
    PENDING_DELETE,
    PENDING_UPDATE,
    changes,
    children,
    choice,
    ensure_mutable,
    integer,
    lock_for_child,
    lookup,
    new_record,
    pool_subtree,
    scope,
    transition,
    validation,
)
from simulator.octavia_listing import list_response, select_fields
from simulator.octavia_status import render_listener, render_pool

LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS")
POOL_PROTOCOLS = ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP")
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
PERSISTENCE_TYPES = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
# listener protocol -> pool protocols it may forward to (Octavia's compatibility matrix)
COMPATIBLE = {
    "HTTP": ("HTTP", "PROXY", "PROXYV2"),
    "HTTPS": ("HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TCP": ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2"),
    "UDP": ("UDP",),
    "SCTP": ("SCTP",),
    "PROMETHEUS": (),
}
_INT_MAX = 2_147_483_647
_TIMEOUTS = {
    "timeout_client_data": 50000, "timeout_member_connect": 5000,
    "timeout_member_data": 50000, "timeout_tcp_inspect": 0,
}  # fmt: skip
_LISTENER_OPTIONAL = (
    "allowed_cidrs", "default_tls_container_ref", "tls_ciphers", "tls_versions",
    "alpn_protocols", "hsts_max_age", "hsts_include_subdomains", "hsts_preload",
    "client_ca_tls_container_ref", "client_authentication", "client_crl_container_ref",
)  # fmt: skip
_LISTENER_UPDATABLE = (
    "connection_limit", "default_pool_id", "insert_headers", "sni_container_refs",
    *_TIMEOUTS, *_LISTENER_OPTIONAL,
)  # fmt: skip
_POOL_OPTIONAL = (
    "tls_enabled", "tls_ciphers", "tls_versions", "alpn_protocols", "tls_container_ref",
    "ca_tls_container_ref", "crl_container_ref",
)  # fmt: skip
_POOL_UPDATABLE = ("lb_algorithm", "session_persistence", *_POOL_OPTIONAL)


# ---- listeners ---------------------------------------------------------------------------------
def _check_default_pool(cloud: Cloud, lb: Record, protocol: str, pool_id: object) -> None:
    if pool_id is None:
        return
    pool = cloud.table("pools").get(str(pool_id))
    if pool is None or pool["_lb_id"] != lb["id"]:
        raise ApiError(404, f"Pool {pool_id} not found.")
    _check_protocols(protocol, pool["protocol"])


def _check_protocols(listener_protocol: str, pool_protocol: str) -> None:
    if pool_protocol not in COMPATIBLE.get(listener_protocol, ()):
        raise validation(
            f"The pool protocol '{pool_protocol}' is invalid while the listener protocol "
            f"is '{listener_protocol}'."
        )


def _check_port_free(cloud: Cloud, lb: Record, protocol: str, port: int) -> None:
    udp = protocol == "UDP"
    for other in children(cloud, "listeners", "_lb_id", lb["id"]):
        if other["protocol_port"] == port and (other["protocol"] == "UDP") == udp:
            raise ApiError(
                409, f"Another Listener on this Load Balancer is already using protocol_port {port}"
            )


def build_listener(cloud: Cloud, lb: Record, body: Record) -> Record:
    """Validate ``body`` and add a PENDING_CREATE listener on ``lb`` (no state change yet)."""
    protocol = choice(body, "protocol", LISTENER_PROTOCOLS)
    port = integer(body, "protocol_port", 1, 65535)
    if port is None:
        raise ApiError(400, "Invalid input for field/attribute protocol_port. Value: 'None'. "
                       "Mandatory field missing.")  # fmt: skip
    _check_port_free(cloud, lb, protocol, port)
    _check_default_pool(cloud, lb, protocol, body.get("default_pool_id"))
    listener = new_record(cloud, lb["project_id"], body)
    listener.update(
        protocol=protocol, protocol_port=port, _lb_id=lb["id"],
        connection_limit=integer(body, "connection_limit", -1, _INT_MAX, -1),
        default_pool_id=body.get("default_pool_id"),
        insert_headers=dict(body.get("insert_headers") or {}),
        sni_container_refs=list(body.get("sni_container_refs") or []), l7policies=[],
    )  # fmt: skip
    for field, default in _TIMEOUTS.items():
        listener[field] = integer(body, field, 0, 31_536_000, default)
    for field in _LISTENER_OPTIONAL:
        listener[field] = body.get(field)
    return cloud.add("listeners", listener, lb["_project_id"])


def _listener(request: web.Request) -> Record:
    return lookup(cloud_of(request), "listeners", request.match_info["listener_id"], scope(request))


def _lb_of(cloud: Cloud, record: Record) -> Record:
    return cloud.table("loadbalancers")[record["_lb_id"]]


async def create_listener(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="listener")
    lb_id = str(body.get("loadbalancer_id") or "")
    if not lb_id:
        raise ApiError(400, "Invalid input for field/attribute loadbalancer_id. Value: 'None'. "
                       "Mandatory field missing.")  # fmt: skip
    lb = lookup(cloud, "loadbalancers", lb_id, scope(request))
    ensure_mutable(lb)
    listener = build_listener(cloud, lb, body)
    lock_for_child(cloud, lb, PENDING_CREATE, [listener])
    return json_response({"listener": render_listener(cloud, listener)}, status=201)


async def list_listeners(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    return list_response(
        request, "listeners", cloud.list("listeners", scope(request)),
        lambda r: render_listener(cloud, r),
        lambda r: {"loadbalancer_id": r["_lb_id"], "load_balancer_id": r["_lb_id"]},
    )  # fmt: skip


async def show_listener(request: web.Request) -> web.Response:
    body = render_listener(cloud_of(request), _listener(request))
    return json_response({"listener": select_fields(body, request)})


async def update_listener(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    listener = _listener(request)
    body = changes(await read_json(request, wrapper="listener"), _LISTENER_UPDATABLE, "listener")
    lb = _lb_of(cloud, listener)
    ensure_mutable(lb)
    if "connection_limit" in body:
        integer(body, "connection_limit", -1, _INT_MAX)
    _check_default_pool(cloud, lb, listener["protocol"], body.get("default_pool_id"))
    listener.update(body)
    lock_for_child(cloud, lb, PENDING_UPDATE, [listener])
    return json_response({"listener": render_listener(cloud, listener)})


async def delete_listener(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    listener = _listener(request)
    lock_for_child(cloud, _lb_of(cloud, listener), PENDING_DELETE, [listener])
    return no_content()


async def listener_stats(request: web.Request) -> web.Response:
    _listener(request)
    stats = ("active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections")
    return json_response({"stats": dict.fromkeys(stats, 0)})


# ---- pools -------------------------------------------------------------------------------------
def _persistence(body: Record) -> Record | None:
    value = body.get("session_persistence")
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in PERSISTENCE_TYPES:
        raise ApiError(
            400, f"Invalid input for field/attribute session_persistence. Value: '{value}'."
        )
    return {"type": value["type"], "cookie_name": value.get("cookie_name"),
            "persistence_timeout": None, "persistence_granularity": None}  # fmt: skip


def _pool_parent(cloud: Cloud, body: Record, project: str | None) -> tuple[Record, Record | None]:
    """(load balancer, listener or None) a new pool hangs off."""
    if body.get("listener_id"):
        listener = lookup(cloud, "listeners", str(body["listener_id"]), project)
        return _lb_of(cloud, listener), listener
    if body.get("loadbalancer_id"):
        return lookup(cloud, "loadbalancers", str(body["loadbalancer_id"]), project), None
    raise validation("loadbalancer_id or listener_id must be specified.")


def build_pool(cloud: Cloud, lb: Record, body: Record, listener: Record | None = None) -> Record:
    """Validate ``body`` and add a PENDING_CREATE pool on ``lb`` (no state change yet)."""
    protocol = choice(body, "protocol", POOL_PROTOCOLS)
    algorithm = choice(body, "lb_algorithm", ALGORITHMS)
    if listener is not None:
        if cloud.table("pools").get(str(listener.get("default_pool_id"))) is not None:
            raise ApiError(409, "This listener already has a default pool")
        _check_protocols(listener["protocol"], protocol)
    pool = new_record(cloud, lb["project_id"], body)
    pool.update(protocol=protocol, lb_algorithm=algorithm, _lb_id=lb["id"],
                session_persistence=_persistence(body))  # fmt: skip
    for field in _POOL_OPTIONAL:
        pool[field] = body.get(field, False if field == "tls_enabled" else None)
    return cloud.add("pools", pool, lb["_project_id"])


def _pool(request: web.Request) -> Record:
    return lookup(cloud_of(request), "pools", request.match_info["pool_id"], scope(request))


async def create_pool(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="pool")
    lb, listener = _pool_parent(cloud, body, scope(request))
    ensure_mutable(lb)
    pool = build_pool(cloud, lb, body, listener)
    delay = lock_for_child(cloud, lb, PENDING_CREATE, [pool])
    if listener is not None:
        listener["default_pool_id"] = pool["id"]
        transition(cloud, listener, PENDING_UPDATE, delay)
    return json_response({"pool": render_pool(cloud, pool)}, status=201)


async def list_pools(request: web.Request) -> web.Response:
    cloud = cloud_of(request)

    def extra(pool: Record) -> Record:
        users = cloud.list("listeners", None, lambda li: li.get("default_pool_id") == pool["id"])
        return {"loadbalancer_id": pool["_lb_id"], "listener_id": [li["id"] for li in users]}

    records = cloud.list("pools", scope(request))
    return list_response(request, "pools", records, lambda r: render_pool(cloud, r), extra)


async def show_pool(request: web.Request) -> web.Response:
    body = render_pool(cloud_of(request), _pool(request))
    return json_response({"pool": select_fields(body, request)})


async def update_pool(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    pool = _pool(request)
    body = changes(await read_json(request, wrapper="pool"), _POOL_UPDATABLE, "pool")
    lb = _lb_of(cloud, pool)
    ensure_mutable(lb)
    if "lb_algorithm" in body:
        choice(body, "lb_algorithm", ALGORITHMS)
    if "session_persistence" in body:
        body["session_persistence"] = _persistence(body)
    pool.update(body)
    lock_for_child(cloud, lb, PENDING_UPDATE, [pool])
    return json_response({"pool": render_pool(cloud, pool)})


async def delete_pool(request: web.Request) -> web.Response:
    """Delete a pool with its members and health monitor, as Octavia does."""
    cloud = cloud_of(request)
    pool = _pool(request)
    lock_for_child(
        cloud, _lb_of(cloud, pool), PENDING_DELETE, [pool, *pool_subtree(cloud, pool["id"])]
    )
    return no_content()
