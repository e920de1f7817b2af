"""The simulated Octavia (load-balancer v2 API): routes, version discovery and catalogs.

Routes answer under both ``/load-balancer/v2/lbaas`` (openstacksdk, after version discovery)
and ``/load-balancer/v2.0/lbaas`` (python-octaviaclient appends ``/v2.0`` to the catalog URL).
The resources live in ``octavia_lb`` (load balancers), ``octavia_listeners`` (listeners,
pools) and ``octavia_members`` (members, health monitors).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator import octavia_lb as lbs
from simulator import octavia_listeners as listeners
from simulator import octavia_members as members
from simulator.core import Cloud, Record
from simulator.http import json_response
from simulator.octavia_common import PREFIX, ROOT, SERVICE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The API minor versions Octavia 2024.x advertises; clients only look at the newest.
_MINORS = 27
_AZ_PROFILE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "clusterbus-sim/octavia/az-profile/nova"))

ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/loadbalancers", lbs.list_, "loadbalancers.list"),
    ("POST", "/loadbalancers", lbs.create, "loadbalancers.create"),
    ("GET", "/loadbalancers/{lb_id}", lbs.show, "loadbalancers.show"),
    ("PUT", "/loadbalancers/{lb_id}", lbs.update, "loadbalancers.update"),
    ("DELETE", "/loadbalancers/{lb_id}", lbs.delete, "loadbalancers.delete"),
    ("GET", "/loadbalancers/{lb_id}/status", lbs.status, "loadbalancer_status.show"),
    ("GET", "/loadbalancers/{lb_id}/stats", lbs.stats, "loadbalancer_stats.show"),
    ("PUT", "/loadbalancers/{lb_id}/failover", lbs.failover, "loadbalancers.action"),
    ("GET", "/listeners", listeners.list_listeners, "listeners.list"),
    ("POST", "/listeners", listeners.create_listener, "listeners.create"),
    ("GET", "/listeners/{listener_id}", listeners.show_listener, "listeners.show"),
    ("PUT", "/listeners/{listener_id}", listeners.update_listener, "listeners.update"),
    ("DELETE", "/listeners/{listener_id}", listeners.delete_listener, "listeners.delete"),
    ("GET", "/listeners/{listener_id}/stats", listeners.listener_stats, "listener_stats.show"),
    ("GET", "/pools", listeners.list_pools, "pools.list"),
    ("POST", "/pools", listeners.create_pool, "pools.create"),
    ("GET", "/pools/{pool_id}", listeners.show_pool, "pools.show"),
    ("PUT", "/pools/{pool_id}", listeners.update_pool, "pools.update"),
    ("DELETE", "/pools/{pool_id}", listeners.delete_pool, "pools.delete"),
    ("GET", "/pools/{pool_id}/members", members.list_members, "members.list"),
    ("POST", "/pools/{pool_id}/members", members.create_member, "members.create"),
    ("GET", "/pools/{pool_id}/members/{member_id}", members.show_member, "members.show"),
    ("PUT", "/pools/{pool_id}/members/{member_id}", members.update_member, "members.update"),
    ("DELETE", "/pools/{pool_id}/members/{member_id}", members.delete_member, "members.delete"),
    ("GET", "/healthmonitors", members.list_monitors, "healthmonitors.list"),
    ("POST", "/healthmonitors", members.create_monitor, "healthmonitors.create"),
    ("GET", "/healthmonitors/{monitor_id}", members.show_monitor, "healthmonitors.show"),
    ("PUT", "/healthmonitors/{monitor_id}", members.update_monitor, "healthmonitors.update"),
    ("DELETE", "/healthmonitors/{monitor_id}", members.delete_monitor, "healthmonitors.delete"),
]


def _version(request: web.Request, minor: int) -> Record:
    base = f"{request.url.origin()}{ROOT}"
    return {
        "id": f"v2.{minor}",
        "status": "CURRENT" if minor == _MINORS else "SUPPORTED",
        "updated": "2024-03-01T00:00:00Z",
        "links": [{"href": f"{base}/v2", "rel": "self"}],
    }


async def versions(request: web.Request) -> web.Response:
    return json_response({"versions": [_version(request, m) for m in range(_MINORS + 1)]})


async def version(request: web.Request) -> web.Response:
    return json_response({"version": _version(request, _MINORS)})


async def providers(request: web.Request) -> web.Response:
    return json_response(lbs.providers_body())


async def flavors(request: web.Request) -> web.Response:
    return json_response({"flavors": [], "flavors_links": []})


async def availability_zones(request: web.Request) -> web.Response:
    zones = [
        {
            "name": name,
            "description": "",
            "enabled": True,
            "availability_zone_profile_id": _AZ_PROFILE_ID,
        }
        for name in lbs.AVAILABILITY_ZONES
    ]
    return json_response({"availability_zones": zones, "availability_zones_links": []})


def setup(app: web.Application, cloud: Cloud) -> None:
    """Register the load-balancer routes; deleted load balancers release their VIP port."""
    cloud.when_gone("loadbalancers", lbs.release_vip)
    add = app.router.add_route
    add("GET", ROOT, versions, name=f"{SERVICE}.versions")
    add("GET", ROOT + r"/{api_version:v2(?:\.0)?}", version, name=f"{SERVICE}.version")
    for method, path, handler, key in ROUTES:
        add(method, PREFIX + path, handler, name=f"{SERVICE}.{key}")
    add("GET", PREFIX + "/providers", providers, name=f"{SERVICE}.providers.list")
    add("GET", PREFIX + "/flavors", flavors, name=f"{SERVICE}.flavors.list")
    add("GET", PREFIX + "/availabilityzones", availability_zones,
        name=f"{SERVICE}.availabilityzones.list")  # fmt: skip
