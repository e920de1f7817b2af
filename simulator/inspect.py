"""The ``/_sim`` API for tests and operators: inventory, call counts, leaks, reset, profile.

No token is needed and nothing here is counted; the simulator only listens on loopback.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from simulator import keystone
from simulator.core import PROJECT_KEY, ApiError, Cloud, Record, public
from simulator.http import CLOUD_KEY, cloud_of, json_response, read_json
from simulator.profile import Profile

KINDS = (
    "servers",
    "flavors",
    "keypairs",
    "server_groups",
    "networks",
    "subnets",
    "ports",
    "routers",
    "floatingips",
    "security_groups",
    "security_group_rules",
    "loadbalancers",
    "listeners",
    "pools",
    "members",
    "healthmonitors",
    "images",
    "projects",
    "users",
)
# Kinds a client creates and must delete again; everything else is the cloud's own.
LEAK_KINDS = (
    "servers",
    "ports",
    "networks",
    "subnets",
    "routers",
    "floatingips",
    "security_groups",
    "security_group_rules",
    "keypairs",
    "server_groups",
    "loadbalancers",
    "listeners",
    "pools",
    "members",
    "healthmonitors",
)


def _described(cloud: Cloud, record: Record) -> Record:
    owner = record.get(PROJECT_KEY)
    return {**public(record), "project": keystone.project_name(cloud, owner), "project_id": owner}


async def inventory(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    cloud.settle()
    wanted = request.query.get("project")
    project_id = keystone.project_id_by_name(cloud, wanted) if wanted else None
    if wanted and project_id is None:
        raise web.HTTPNotFound(text=f"no project {wanted}")
    body = {
        kind: [
            _described(cloud, r)
            for r in cloud.table(kind).values()
            if project_id is None or r.get(PROJECT_KEY) == project_id
        ]
        for kind in KINDS
    }
    return json_response(body)


async def resource(request: web.Request) -> web.Response:
    """One record, settled first: lets a test wait for a state without a token."""
    cloud = cloud_of(request)
    cloud.settle()
    record = cloud.table(request.match_info["kind"]).get(request.match_info["id"])
    if record is None:
        raise web.HTTPNotFound(text="no such resource")
    return json_response(_described(cloud, record))


async def calls(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    services: Counter[str] = Counter()
    for key, count in cloud.calls.items():
        services[key.split(".", 1)[0]] += count
    return json_response(
        {
            "calls": dict(cloud.calls),
            "services": dict(services),
            "errors": dict(cloud.errors),
            "total": sum(cloud.calls.values()),
        }
    )


def leaks(cloud: Cloud, seed: set[tuple[str, str]], tag: str | None = None) -> list[Record]:
    """Every resource a client created and has not deleted (only those tagged ``tag`` if given)."""
    cloud.settle()
    default_groups = {
        r["id"] for r in cloud.table("security_groups").values() if r.get("name") == "default"
    }
    gateways = {
        s.get("gateway_ip")
        for s in cloud.table("subnets").values()
        if _is_external(cloud, s.get("network_id"))
    }
    found = []
    for kind in LEAK_KINDS:
        for record in cloud.table(kind).values():
            if (kind, record["id"]) in seed or _is_infrastructure(
                cloud, kind, record, default_groups, gateways
            ):
                continue
            if tag is not None and tag not in _tags(cloud, kind, record):
                continue
            found.append(
                {
                    "kind": kind,
                    "id": record["id"],
                    "name": record.get("name"),
                    "project": keystone.project_name(cloud, record.get(PROJECT_KEY)),
                    "tags": record.get("tags", []),
                }
            )
    return found


def _is_external(cloud: Cloud, network_id: Any) -> bool:
    network = cloud.table("networks").get(str(network_id))
    return bool(network and network.get("router:external"))


def _is_infrastructure(
    cloud: Cloud, kind: str, record: Record, default_groups: set[str], gateways: set[Any]
) -> bool:
    """The cloud's own records: external networks, default groups, DHCP and gateway ports."""
    if kind == "networks":
        return bool(record.get("router:external"))
    if kind == "subnets":
        return _is_external(cloud, record.get("network_id"))
    if kind == "security_groups":
        return record.get("name") == "default"
    if kind == "security_group_rules":
        return record.get("security_group_id") in default_groups
    if kind == "ports":
        ips = {ip.get("ip_address") for ip in record.get("fixed_ips", [])}
        return record.get("device_owner") == "network:dhcp" or (
            _is_external(cloud, record.get("network_id"))
            and bool(ips & gateways)
            and not record.get("device_id")
        )
    return False


def _tags(cloud: Cloud, kind: str, record: Record) -> list[str]:
    """A record's tags; a security group rule inherits its group's."""
    tags = list(record.get("tags") or [])
    if kind == "security_group_rules":
        group = cloud.table("security_groups").get(str(record.get("security_group_id")))
        tags += list((group or {}).get("tags") or [])
    return tags


async def leaks_report(request: web.Request) -> web.Response:
    from simulator.app import SEED_KEY  # app imports this module: import at call time

    found = leaks(cloud_of(request), request.app[SEED_KEY], request.query.get("tag"))
    return json_response({"leaks": found, "count": len(found)})


async def reset(request: web.Request) -> web.Response:
    from simulator.app import reseed

    reseed(request.app)
    return json_response({"reset": True})


async def show_profile(request: web.Request) -> web.Response:
    return json_response(cloud_of(request).profile.model_dump(mode="json"))


async def replace_profile(request: web.Request) -> web.Response:
    """Replace the profile; ``?reset=1`` also goes back to the seed state (new projects)."""
    from simulator.app import reseed, set_profile

    try:
        profile = Profile.model_validate(await read_json(request))
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except ApiError as exc:
        raise web.HTTPBadRequest(text=exc.message) from exc
    if request.query.get("reset") in ("1", "true"):
        reseed(request.app, profile)
    else:
        set_profile(request.app, profile)
    return json_response(profile.model_dump(mode="json"))


def setup(app: web.Application, cloud: Cloud) -> None:
    del cloud  # the handlers read the cloud from the request
    assert CLOUD_KEY in app
    route = app.router.add_route
    route("GET", "/_sim/inventory", inventory, name="sim.inventory")
    route("GET", "/_sim/resources/{kind}/{id}", resource, name="sim.resource")
    route("GET", "/_sim/calls", calls, name="sim.calls")
    route("GET", "/_sim/leaks", leaks_report, name="sim.leaks")
    route("POST", "/_sim/reset", reset, name="sim.reset")
    route("GET", "/_sim/profile", show_profile, name="sim.profile.show")
    route("PUT", "/_sim/profile", replace_profile, name="sim.profile.update")
