"""Neutron plumbing shared by the network modules: record fields, errors, filters, paging.

Every Neutron resource carries the same standard attributes (``tenant_id``/``project_id``,
``description``, ``tags``, ``created_at``/``updated_at``, ``revision_number``); ``new_record``
adds them and ``touch`` bumps them on update. ``list_response`` applies Neutron's query
semantics (field filters, tag filters, ``fields=``, ``limit``/``marker`` with links).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator import quotas
from simulator.core import PROJECT_KEY, ApiError, Cloud, Record, public
from simulator.http import json_response

PREFIX = "/network/v2.0"

# The external network seeded by neutron.setup has fixed ids, so every module (and client) can
# name it without a lookup.
EXTERNAL_NETWORK_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "clusterbus-sim/network/external"))
EXTERNAL_SUBNET_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "clusterbus-sim/subnet/external"))

DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNER = "network:router_interface"
ROUTER_GATEWAY_OWNER = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"

_PAGING_KEYS = {"limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse"}
_TAG_KEYS = {"tags", "tags-any", "not-tags", "not-tags-any"}


def neutron_error(status: int, kind: str, message: str) -> ApiError:
    """An ApiError whose ``kind`` becomes the NeutronError ``type``."""
    return ApiError(status, message, kind=kind)


def not_found(label: str, resource_id: str, kind: str = "") -> ApiError:
    """Neutron's 404: ``Network abc could not be found.``"""
    kind = kind or label.replace(" ", "") + "NotFound"
    return neutron_error(404, kind, f"{label} {resource_id} could not be found.")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_record(cloud: Cloud, kind: str, project_id: str | None, fields: Record) -> Record:
    """Store a record of ``kind`` with Neutron's standard attributes around ``fields``."""
    stamp = now_iso()
    owner = project_id or ""
    record: Record = {
        "id": cloud.new_id(),
        "tenant_id": owner,
        "project_id": owner,
        "description": "",
        "tags": [],
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": 1,
    }
    record.update(fields)
    return cloud.add(kind, record, project_id)


def touch(record: Record) -> Record:
    """Record an update: bump ``revision_number`` and ``updated_at``."""
    record["revision_number"] = int(record.get("revision_number", 0)) + 1
    record["updated_at"] = now_iso()
    return record


def is_admin(request: web.Request) -> bool:
    return "admin" in (request.get("roles") or [])


def scope(request: web.Request) -> str | None:
    """The project whose records the caller may see: None (all) for the admin role."""
    return None if is_admin(request) else str(request["project_id"])


def owner_for(request: web.Request, body: Record) -> str:
    """The project a new record belongs to: the caller's, or the body's for an admin."""
    asked = body.get("project_id") or body.get("tenant_id")
    if asked and is_admin(request):
        return str(asked)
    return str(request["project_id"])


def updatable(body: Record, allowed: set[str], label: str) -> Record:
    """The body's fields, 400 if any of them cannot be changed (like Neutron's API layer)."""
    bad = sorted(set(body) - allowed)
    if bad:
        raise neutron_error(
            400, "HTTPBadRequest", f"Cannot update read-only attribute {bad[0]} of {label}"
        )
    return body


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise neutron_error(
        400, "HTTPBadRequest", f"Invalid input for {name}. '{value}' is not a valid boolean value."
    )


# ---- listing ------------------------------------------------------------------------------
def _matches_value(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any(value == (w.lower() == "true") for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return str(value) in wanted


def _matches_fixed_ips(record: Record, wanted: list[str]) -> bool:
    """``fixed_ips=ip_address=10.0.0.5`` / ``fixed_ips=subnet_id=X`` (all must match)."""
    for item in wanted:
        key, _, value = item.partition("=")
        if not any(str(ip.get(key)) == value for ip in record.get("fixed_ips", [])):
            return False
    return True


def _comma_set(values: list[str]) -> set[str]:
    return {t for v in values for t in v.split(",") if t}


def _matches_tags(tags: set[str], key: str, wanted: set[str]) -> bool:
    if key == "tags":
        return wanted <= tags
    if key == "tags-any":
        return bool(wanted & tags)
    if key == "not-tags":
        return not wanted <= tags
    return not wanted & tags  # not-tags-any


def record_filter(request: web.Request) -> Callable[[Record], bool]:
    """A predicate from the query string: every field filter and tag filter must match."""
    query = request.query
    keys = [k for k in dict.fromkeys(query.keys()) if k not in _PAGING_KEYS]

    def match(record: Record) -> bool:
        for key in keys:
            wanted = query.getall(key)
            if key in _TAG_KEYS:
                if not _matches_tags(set(record.get("tags", [])), key, _comma_set(wanted)):
                    return False
            elif key == "fixed_ips":
                if not _matches_fixed_ips(record, wanted):
                    return False
            elif key in ("ip_address", "subnet_id") and "fixed_ips" in record:
                if not _matches_fixed_ips(record, [f"{key}={w}" for w in wanted[:1]]):
                    return False
            elif key in record and not _matches_value(record[key], wanted):
                return False
        return True

    return match


def select_fields(body: Record, request: web.Request) -> Record:
    """Apply ``fields=a&fields=b`` (Neutron always keeps nothing else)."""
    fields = [f for value in request.query.getall("fields", []) for f in value.split(",") if f]
    if not fields:
        return body
    return {k: v for k, v in body.items() if k in fields}


def _page(records: list[Record], request: web.Request) -> tuple[list[Record], bool]:
    marker = request.query.get("marker")
    if marker:
        ids = [r["id"] for r in records]
        records = records[ids.index(marker) + 1 :] if marker in ids else []
    sort_key = request.query.get("sort_key")
    if sort_key:
        reverse = request.query.get("sort_dir", "asc") == "desc"
        records = sorted(records, key=lambda r: str(r.get(sort_key, "")), reverse=reverse)
    limit_text = request.query.get("limit")
    if not limit_text:
        return records, False
    try:
        limit = int(limit_text)
    except ValueError as exc:
        raise neutron_error(400, "HTTPBadRequest", f"Invalid limit '{limit_text}'") from exc
    if limit <= 0:
        return records, False
    return records[:limit], len(records) > limit


def list_response(
    request: web.Request,
    collection: str,
    records: list[Record],
    render: Callable[[Record], Record] = public,
) -> web.Response:
    """The Neutron list body ``{collection: [...], collection_links: [...]}``."""
    match = record_filter(request)
    chosen = [r for r in records if match(r)]
    page, more = _page(chosen, request)
    body: Record = {collection: [select_fields(render(r), request) for r in page]}
    if more and page:
        query = {k: v for k, v in request.query.items() if k != "marker"}
        query["marker"] = page[-1]["id"]
        href = request.url.with_query(query)
        body[f"{collection}_links"] = [{"rel": "next", "href": str(href)}]
    return json_response(body)


def show_response(
    request: web.Request, key: str, record: Record, render: Callable[[Record], Record] = public
) -> web.Response:
    return json_response({key: select_fields(render(record), request)})


def check_quota(cloud: Cloud, project_id: str | None, resource: str, requested: int = 1) -> None:
    """Neutron's quota check (409 OverQuota); shared records (no project) are not counted."""
    if project_id:
        quotas.check(cloud, project_id, resource, requested)


def visible(record: Record, project_id: str | None) -> bool:
    """Neutron visibility: the admin sees all; others their own, shared and public records."""
    owner = record.get(PROJECT_KEY)
    return project_id is None or owner is None or owner == project_id or bool(record.get("shared"))


def find_visible(
    cloud: Cloud, kind: str, resource_id: str, project_id: str | None
) -> Record | None:
    record = cloud.table(kind).get(resource_id)
    return record if record is not None and visible(record, project_id) else None


def list_visible(cloud: Cloud, kind: str, project_id: str | None) -> list[Record]:
    return cloud.list(kind, None, lambda r: visible(r, project_id))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERBS = {
    "list": ("GET", ""),
    "create": ("POST", ""),
    "show": ("GET", "/{id}"),
    "update": ("PUT", "/{id}"),
    "delete": ("DELETE", "/{id}"),
}


def add_collection(app: web.Application, path: str, **handlers: Handler) -> None:
    """Register a collection's CRUD routes as ``network.{collection}.{verb}``."""
    kind = path.replace("-", "_")
    for verb, handler in handlers.items():
        method, suffix = _VERBS[verb]
        name = f"network.{kind}.{verb}"
        app.router.add_route(method, f"{PREFIX}/{path}{suffix}", handler, name=name)
