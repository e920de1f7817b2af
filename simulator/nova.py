"""The simulated Nova (compute v2.1, microversions 2.1-2.79): version documents and routes.

The work is split by resource (``nova_flavors``, ``nova_keypairs``, ``nova_server_groups``,
``nova_boot`` + ``nova_servers`` + ``nova_server_view``, ``nova_server_extras``); this module
wires their routes and re-exports ``server_for_address`` for Octavia.
"""

from __future__ import annotations

from aiohttp import web

from simulator import (
    nova_flavors,
    nova_keypairs,
    nova_server_extras,
    nova_server_groups,
    nova_servers,
)
from simulator.core import Cloud, Record
from simulator.http import json_response
from simulator.nova_common import MAX_VERSION, MIN_VERSION, PREFIX, Handler, origin, text, versioned
from simulator.nova_servers import server_for_address

__all__ = ["server_for_address", "setup"]

_UPDATED = "2013-07-23T11:33:21Z"
# An id segment that is not "detail": aiohttp tries /servers/{id} before /servers{detail}.
_FLAVOR = "/flavors/{flavor_id:(?!detail$)[^/]+}"
_SERVER = "/servers/{server_id:(?!detail$)[^/]+}"


def _version(request: web.Request) -> Record:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": text(MAX_VERSION),
        "min_version": text(MIN_VERSION),
        "updated": _UPDATED,
        "links": [
            {"rel": "self", "href": f"{origin(request)}{PREFIX}/"},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


async def versions(request: web.Request) -> web.Response:
    """GET /compute (all versions) and GET /compute/v2.1 (this version)."""
    if request.match_info["version"].strip("/"):
        return json_response({"version": _version(request)})
    return json_response({"versions": [_version(request)]})


# (method, path under /compute/v2.1, handler, operation key). Paths sharing an operation key use
# one regex route so that every route name stays unique, as aiohttp requires.
_ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/flavors{detail:(?:/detail)?}", nova_flavors.list_flavors, "compute.flavors.list"),
    ("GET", _FLAVOR, nova_flavors.show_flavor, "compute.flavors.show"),
    (
        "GET",
        _FLAVOR + "/os-extra_specs",
        nova_flavors.flavor_extra_specs,
        "compute.flavor-extra-specs.list",
    ),
    (
        "GET",
        "/os-availability-zone{detail:(?:/detail)?}",
        nova_flavors.list_availability_zones,
        "compute.availability-zones.list",
    ),
    ("GET", "/limits", nova_server_extras.show_limits, "compute.limits.show"),
    ("POST", "/os-keypairs", nova_keypairs.create_keypair, "compute.keypairs.create"),
    ("GET", "/os-keypairs", nova_keypairs.list_keypairs, "compute.keypairs.list"),
    ("GET", "/os-keypairs/{name}", nova_keypairs.show_keypair, "compute.keypairs.show"),
    ("DELETE", "/os-keypairs/{name}", nova_keypairs.delete_keypair, "compute.keypairs.delete"),
    (
        "POST",
        "/os-server-groups",
        nova_server_groups.create_server_group,
        "compute.server_groups.create",
    ),
    (
        "GET",
        "/os-server-groups",
        nova_server_groups.list_server_groups,
        "compute.server_groups.list",
    ),
    (
        "GET",
        "/os-server-groups/{group_id}",
        nova_server_groups.show_server_group,
        "compute.server_groups.show",
    ),
    (
        "DELETE",
        "/os-server-groups/{group_id}",
        nova_server_groups.delete_server_group,
        "compute.server_groups.delete",
    ),
    ("GET", "/servers{detail:(?:/detail)?}", nova_servers.list_servers, "compute.servers.list"),
    ("POST", "/servers", nova_servers.create_server, "compute.servers.create"),
    ("GET", _SERVER, nova_servers.show_server, "compute.servers.show"),
    ("PUT", _SERVER, nova_servers.update_server, "compute.servers.update"),
    ("DELETE", _SERVER, nova_servers.delete_server, "compute.servers.delete"),
    (
        "GET",
        _SERVER + "/os-interface",
        nova_server_extras.list_interfaces,
        "compute.server-interfaces.list",
    ),
    (
        "GET",
        _SERVER + "/os-interface/{port_id}",
        nova_server_extras.show_interface,
        "compute.server-interfaces.show",
    ),
]
# Sub-resources whose methods share one route (and so one operation key).
_SHARED_ROUTES: list[tuple[tuple[str, ...], str, Handler, str]] = [
    (
        ("GET", "PUT", "DELETE"),
        _SERVER + "/tags{tag:(?:/[^/]+)?}",
        nova_server_extras.tags,
        "compute.servers.tags",
    ),
    (
        ("GET", "PUT", "POST", "DELETE"),
        _SERVER + "/metadata{key:(?:/[^/]+)?}",
        nova_server_extras.metadata,
        "compute.server-metadata.update",
    ),
]


def setup(app: web.Application, cloud: Cloud) -> None:
    """Seed the flavors and register every Nova route."""
    nova_flavors.seed(cloud)
    # /compute, /compute/, /compute/v2.1 and /compute/v2.1/ (keystoneauth asks for several).
    app.router.add_route(
        "GET", r"/compute{version:(?:/v2\.1)?/?}", versions, name="compute.versions"
    )
    for method, path, handler, key in _ROUTES:
        app.router.add_route(method, PREFIX + path, versioned(handler), name=key)
    for methods, path, handler, key in _SHARED_ROUTES:
        resource = app.router.add_resource(PREFIX + path, name=key)
        for method in methods:
            resource.add_route(method, versioned(handler))
