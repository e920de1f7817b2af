"""Neutron's version documents, extension list, tags API and quota reads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator import quotas
from simulator.core import Record
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import PREFIX, is_admin, neutron_error, not_found, scope, touch, visible

_UPDATED = "2024-01-01T10:00:00-00:00"
# alias -> (name, description): only what this simulator really implements.
EXTENSIONS: dict[str, tuple[str, str]] = {
    "standard-attr-tag": (
        "Tag support for resources with standard attribute",
        "Enables to set tag on resources with standard attribute.",
    ),
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
        "standard attributes.",
    ),
    "router": (
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to "
        "external networks via a NAT gateway.",
    ),
    "external-net": (
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    "ext-gw-mode": (
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the "
        "external gateway",
    ),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    ),
    "security-group": ("security-group", "The security groups extension."),
    "stateful-security-group": (
        "Stateful security group",
        "Indicates if the security group is stateful or not",
    ),
    "port-security": ("Port Security", "Provides port security"),
    "port-security-groups-filtering": (
        "Port filtering on security groups",
        "Provides security groups filtering when listing ports",
    ),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": (
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "fip-port-details": (
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
    ),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
}
# URL collection -> stored kind, for the tags API.
TAGGABLE = {
    "networks": "networks",
    "subnets": "subnets",
    "ports": "ports",
    "routers": "routers",
    "floatingips": "floatingips",
    "security-groups": "security_groups",
}
_QUOTA_NAMES = (
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
)


# ---- versions and extensions ----------------------------------------------------------------
def _base(request: web.Request) -> str:
    return f"{request.url.scheme}://{request.url.host}:{request.url.port}/network"


async def versions(request: web.Request) -> web.Response:
    link = {"href": f"{_base(request)}/v2.0/", "rel": "self"}
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [link]}]})


async def version(request: web.Request) -> web.Response:
    resources = [
        "networks",
        "subnets",
        "ports",
        "routers",
        "floatingips",
        "security-groups",
        "security-group-rules",
        "quotas",
        "extensions",
    ]
    return json_response(
        {
            "resources": [
                {
                    "name": name.rstrip("s"),
                    "collection": name,
                    "links": [{"href": f"{_base(request)}/v2.0/{name}", "rel": "self"}],
                }
                for name in resources
            ]
        }
    )


def _extension(alias: str) -> Record:
    name, description = EXTENSIONS[alias]
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": _UPDATED,
        "links": [],
    }


async def list_extensions(request: web.Request) -> web.Response:
    return json_response({"extensions": [_extension(alias) for alias in EXTENSIONS]})


async def show_extension(request: web.Request) -> web.Response:
    alias = request.match_info["alias"]
    if alias not in EXTENSIONS:
        raise neutron_error(404, "HTTPNotFound", f"Extension with alias {alias} does not exist")
    return json_response({"extension": _extension(alias)})


# ---- tags ---------------------------------------------------------------------------------------
def _valid_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(_valid_tag(t) for t in tags):
        raise neutron_error(
            400, "InvalidInput", f"Invalid input for operation: Invalid tags {tags}."
        )
    return list(dict.fromkeys(tags))


def _valid_tag(tag: Any) -> bool:
    return isinstance(tag, str) and 0 < len(tag) <= 255 and "," not in tag and "/" not in tag


async def tags(request: web.Request) -> web.Response:
    """The whole tags API of one resource: ``/{collection}/{id}/tags[/{tag}]``, any method."""
    collection, resource_id = request.match_info["collection"], request.match_info["id"]
    record = cloud_of(request).table(TAGGABLE[collection]).get(resource_id)
    if record is None or not visible(record, scope(request)):
        raise not_found(collection.rstrip("s").replace("-", " ").title(), resource_id)
    tag = request.match_info.get("tag", "").lstrip("/") or None
    if tag is None:
        return await _all_tags(request, record)
    if request.method == "GET":
        if tag not in record["tags"]:
            raise neutron_error(404, "TagNotFound", f"Tag {tag} could not be found.")
        return no_content()
    if request.method == "PUT":
        record["tags"] = _valid_tags([*record["tags"], tag])
        touch(record)
        return web.Response(status=201)
    if request.method == "DELETE":
        if tag not in record["tags"]:
            raise neutron_error(404, "TagNotFound", f"Tag {tag} could not be found.")
        record["tags"].remove(tag)
        touch(record)
        return no_content()
    raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "DELETE"])


async def _all_tags(request: web.Request, record: Record) -> web.Response:
    if request.method == "GET":
        return json_response({"tags": record["tags"]})
    if request.method == "DELETE":
        record["tags"] = []
        touch(record)
        return no_content()
    if request.method not in ("PUT", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "POST", "DELETE"])
    wanted = _valid_tags((await read_json(request)).get("tags"))
    record["tags"] = wanted if request.method == "PUT" else _valid_tags([*record["tags"], *wanted])
    touch(record)
    return json_response({"tags": record["tags"]}, status=200 if request.method == "PUT" else 201)


# ---- quotas -------------------------------------------------------------------------------------
def _quota_project(request: web.Request) -> str:
    project_id = request.match_info["project_id"]
    if project_id != request["project_id"] and not is_admin(request):
        raise neutron_error(
            403, "HTTPForbidden", "Non-admin is not authorized to access quotas for another project"
        )
    return project_id


async def show_quota(request: web.Request) -> web.Response:
    limits = quotas.limits(cloud_of(request), _quota_project(request))
    return json_response({"quota": {name: int(getattr(limits, name)) for name in _QUOTA_NAMES}})


async def quota_details(request: web.Request) -> web.Response:
    cloud, project_id = cloud_of(request), _quota_project(request)
    limits = quotas.limits(cloud, project_id)
    return json_response(
        {
            "quota": {
                name: {
                    "limit": int(getattr(limits, name)),
                    "used": quotas.usage(cloud, project_id, name),
                    "reserved": 0,
                }
                for name in _QUOTA_NAMES
            }
        }
    )


def setup_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/network", versions, name="network.versions")
    add("GET", PREFIX, version, name="network.version")
    add("GET", f"{PREFIX}/extensions", list_extensions, name="network.extensions.list")
    add("GET", f"{PREFIX}/extensions/{{alias}}", show_extension, name="network.extensions.show")
    add("GET", f"{PREFIX}/quotas/{{project_id}}", show_quota, name="network.quotas.show")
    add(
        "GET",
        f"{PREFIX}/quotas/{{project_id}}/details",
        quota_details,
        name="network.quota_details.show",
    )
    for collection in TAGGABLE:
        # One route per collection (route names are unique): the optional tail is one tag.
        path = f"{PREFIX}/{{collection:{collection}}}/{{id}}/tags{{tag:(/[^/]+)?}}"
        add("*", path, tags, name=f"network.{collection.replace('-', '_')}.tags")
