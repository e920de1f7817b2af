"""Octavia plumbing shared by the load-balancer modules: errors, validation, relations, locking.

The locking rule is Octavia's: a load balancer is mutable only while ACTIVE. Any change to it
or one of its children moves it (and the child) to a PENDING_* provisioning status until the
"amphora" has applied the change, which ``lock`` models with ``Cloud.schedule``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator.core import GONE, ApiError, Cloud, Record

SERVICE = "load-balancer"
ROOT = "/load-balancer"
# openstacksdk uses the discovered /v2 endpoint, python-octaviaclient appends /v2.0 itself.
PREFIX = ROOT + r"/{api_version:v2(?:\.0)?}/lbaas"

ACTIVE = "ACTIVE"
ERROR = "ERROR"
PENDING_CREATE = "PENDING_CREATE"
PENDING_UPDATE = "PENDING_UPDATE"
PENDING_DELETE = "PENDING_DELETE"
PENDING = (PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE)

# Names Octavia uses in its messages ("Load Balancer <id> not found.").
LABELS = {
    "loadbalancers": "Load Balancer",
    "listeners": "Listener",
    "pools": "Pool",
    "members": "Member",
    "healthmonitors": "Health Monitor",
}


# ---- errors and validation ------------------------------------------------------------------
def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, f"{LABELS.get(kind, kind)} {resource_id} not found.")


def validation(detail: str) -> ApiError:
    return ApiError(400, f"Validation failure: {detail}")


def invalid_input(field: str, value: Any, detail: str) -> ApiError:
    """wsme's 400 for a field that fails its type or range check."""
    return ApiError(400, f"Invalid input for field/attribute {field}. Value: '{value}'. {detail}")


def require(body: Record, field: str) -> Any:
    value = body.get(field)
    if value is None:
        raise invalid_input(field, None, "Mandatory field missing.")
    return value


def choice(body: Record, field: str, allowed: Iterable[str], default: str | None = None) -> Any:
    """``body[field]`` (or ``default``) when it is one of ``allowed``; 400 otherwise."""
    value = body.get(field, default)
    if value is None:
        if default is None:
            return require(body, field)
        return default
    options = list(allowed)
    if value not in options:
        raise invalid_input(field, value, f"Value should be one of: {', '.join(options)}")
    return value


def integer(body: Record, field: str, low: int, high: int, default: int | None = None) -> Any:
    """``body[field]`` as an int within [low, high]; ``default`` (may be None) when absent."""
    value = body.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_input(field, value, "Value should be an integer")
    if value < low:
        raise invalid_input(field, value, f"Value should be greater or equal to {low}")
    if value > high:
        raise invalid_input(field, value, f"Value should be lower or equal to {high}")
    return value


def boolean(body: Record, field: str, default: bool = True) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise invalid_input(field, value, "Value should be a boolean")
    return value


def ip_address(body: Record, field: str) -> str:
    value = require(body, field)
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError as exc:
        raise invalid_input(field, value, "Value should be IPv4 or IPv6 format") from exc


def tags(body: Record, default: list[str] | None = None) -> list[str]:
    value = body.get("tags", default if default is not None else [])
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid_input("tags", value, "Value should be a list of strings")
    return list(value)


def copy_fields(target: Record, body: Record, fields: Iterable[str]) -> None:
    """Copy the given fields that are present in ``body`` into ``target``."""
    for field in fields:
        if field in body:
            target[field] = body[field]


def new_record(cloud: Cloud, project_id: str, body: Record) -> Record:
    """The fields every Octavia object has, for a new one being created."""
    return {
        "id": cloud.new_id(),
        "name": str(body.get("name") or ""),
        "description": str(body.get("description") or ""),
        "admin_state_up": boolean(body, "admin_state_up"),
        "project_id": project_id,
        "provisioning_status": PENDING_CREATE,
        "operating_status": "OFFLINE",
        "created_at": now_iso(),
        "updated_at": None,
        "tags": tags(body),
    }


def changes(body: Record, allowed: Iterable[str], wrapper: str) -> Record:
    """The validated fields of a PUT body; 400 for one the API does not let you change."""
    allowed = {"name", "description", "admin_state_up", "tags", *allowed}
    for field in body:
        if field not in allowed:
            raise invalid_input(wrapper, body, f"Unknown attribute for argument {wrapper}: {field}")
    if "admin_state_up" in body:
        boolean(body, "admin_state_up")
    if "tags" in body:
        tags(body)
    return {k: ("" if v is None and k in ("name", "description") else v) for k, v in body.items()}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def is_admin(request: web.Request) -> bool:
    return "admin" in (request.get("roles") or [])


def scope(request: web.Request) -> str | None:
    """The project whose records the caller sees: None (all of them) for the admin role."""
    return None if is_admin(request) else str(request["project_id"])


def owner_for(request: web.Request, body: Record) -> str:
    """The project of a new record: the caller's, or the body's ``project_id`` for an admin."""
    asked = body.get("project_id")
    return str(asked) if asked and is_admin(request) else str(request["project_id"])


def lookup(cloud: Cloud, kind: str, resource_id: str, project_id: str | None) -> Record:
    """The record, or Octavia's 404 (records being deleted stay visible until gone)."""
    record = cloud.find(kind, resource_id, project_id)
    if record is None:
        raise not_found(kind, resource_id)
    return record


# ---- relations --------------------------------------------------------------------------------
def lb_id_of(record: Record) -> str:
    return str(record["_lb_id"])


def children(cloud: Cloud, kind: str, key: str, parent_id: str) -> list[Record]:
    """Records of ``kind`` whose private ``key`` points at ``parent_id``, in creation order."""
    return cloud.list(kind, None, lambda r: r.get(key) == parent_id)


def monitor_of(cloud: Cloud, pool_id: str) -> Record | None:
    found = children(cloud, "healthmonitors", "_pool_id", pool_id)
    return found[0] if found else None


def subtree(cloud: Cloud, lb_id: str) -> list[Record]:
    """Every listener, pool, member and health monitor of a load balancer."""
    pools = children(cloud, "pools", "_lb_id", lb_id)
    found = children(cloud, "listeners", "_lb_id", lb_id) + pools
    for pool in pools:
        found += pool_subtree(cloud, pool["id"])
    return found


def pool_subtree(cloud: Cloud, pool_id: str) -> list[Record]:
    """The members and health monitor of a pool (deleted along with it)."""
    return children(cloud, "members", "_pool_id", pool_id) + children(
        cloud, "healthmonitors", "_pool_id", pool_id
    )


# ---- locking -------------------------------------------------------------------------------
def update_delay(cloud: Cloud, lb: Record) -> float:
    """Cloud seconds an amphora update takes: lb_update, or longer for a 'stuck' name."""
    for stuck in cloud.profile.faults.stuck_load_balancers:
        if re.search(stuck.name_regex, str(lb.get("name") or "")):
            return float(stuck.seconds)
    return float(cloud.profile.delays.lb_update)


def delete_delay(cloud: Cloud, cloud_seconds: float) -> float:
    return cloud_seconds * float(cloud.profile.faults.slow_delete_factor)


def immutable(lb: Record) -> ApiError:
    return ApiError(409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")


def pending_state(lb: Record) -> ApiError:
    return ApiError(
        409, f"Invalid state {lb['provisioning_status']} of loadbalancer resource {lb['id']}"
    )


def transition(cloud: Cloud, record: Record, status: str, cloud_seconds: float) -> None:
    """Set ``status`` now; after ``cloud_seconds`` become ACTIVE (or vanish after a delete)."""
    record["provisioning_status"] = status
    if status != PENDING_CREATE:
        record["updated_at"] = now_iso()
    done: Record = {GONE: True} if status == PENDING_DELETE else {"provisioning_status": ACTIVE}
    cloud.schedule(record, cloud_seconds, done)


def ensure_mutable(lb: Record) -> None:
    """Octavia's 409 for a child change while the load balancer is not ACTIVE."""
    if lb["provisioning_status"] != ACTIVE:
        raise immutable(lb)


def lock_for_child(cloud: Cloud, lb: Record, status: str, changed: list[Record]) -> float:
    """A child change: LB PENDING_UPDATE and ``changed`` in ``status`` until the update is done.

    Returns the cloud seconds the change takes, so callers can move further records along.
    """
    ensure_mutable(lb)
    delay = update_delay(cloud, lb)
    if status == PENDING_DELETE:
        delay = delete_delay(cloud, delay)
    transition(cloud, lb, PENDING_UPDATE, delay)
    for record in changed:
        transition(cloud, record, status, delay)
    return delay
