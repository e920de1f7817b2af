"""The simulator's aiohttp application: service modules plus the middleware every request passes.

Per request, in this order: settle due state changes, count the call under its operation key
(the route name), check the token, sleep the profile's latency, maybe inject a fault, run the
handler, render ``ApiError`` (and router 404/405) in the service's own JSON error shape.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web

from simulator import glance, inspect, keystone
from simulator.core import ApiError, Clock, Cloud
from simulator.http import CLOUD_KEY, cloud_of
from simulator.profile import Latency, Profile

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Setup = Callable[[web.Application, Cloud], None]

RNG_KEY: web.AppKey[random.Random] = web.AppKey("rng", random.Random)
# (kind, id) of every record that exists right after seeding: /_sim/leaks ignores them.
SEED_KEY: web.AppKey[set[tuple[str, str]]] = web.AppKey("seed", set)

# Services written by other modules; a missing one is skipped so the rest still works.
OPTIONAL_SERVICES = ("simulator.nova", "simulator.neutron", "simulator.octavia")
SERVICE_PREFIXES = ("identity", "compute", "network", "load-balancer", "image")
COMPUTE_MICROVERSION = "2.1"
_NOVA_ERROR_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "HTTPMethodNotAllowed",
    409: "conflictingRequest",
    413: "overLimit",
    500: "computeFault",
    503: "serviceUnavailable",
}


def create_app(profile: Profile | None = None) -> web.Application:
    """A ready simulator application for ``profile`` (defaults everywhere when None)."""
    profile = profile or Profile()
    cloud = Cloud(profile=profile, clock=Clock(scale=profile.time_scale))
    app = web.Application(middlewares=[simulator_middleware])
    app[CLOUD_KEY] = cloud
    app[RNG_KEY] = random.Random(profile.seed)
    for setup in service_setups():
        setup(app, cloud)
    inspect.setup(app, cloud)
    app[SEED_KEY] = seed_keys(cloud)
    return app


def service_setups() -> list[Setup]:
    """``setup`` of every service module present, keystone first (others need its projects)."""
    setups: list[Setup] = [keystone.setup, glance.setup]
    for name in OPTIONAL_SERVICES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            # Absent or half-written service: serve the others; its routes answer 404.
            log.error("simulator service %s unavailable: %s", name, exc)
            continue
        setups.append(module.setup)
    return setups


def seed_keys(cloud: Cloud) -> set[tuple[str, str]]:
    return {(kind, rid) for kind, table in cloud.resources.items() for rid in table}


def reseed(app: web.Application, profile: Profile | None = None) -> None:
    """Back to the seed state in place (same Cloud object), optionally with a new profile."""
    cloud = app[CLOUD_KEY]
    if profile is not None:
        cloud.profile = profile
        app[RNG_KEY].seed(profile.seed)
    cloud.clock.scale = cloud.profile.time_scale
    cloud.resources.clear()
    cloud.calls.clear()
    cloud.errors.clear()
    scratch = web.Application()  # routes land here and are dropped; only the seeding matters
    for setup in service_setups():
        setup(scratch, cloud)
    app[SEED_KEY] = seed_keys(cloud)


def set_profile(app: web.Application, profile: Profile) -> None:
    """Replace the profile at run time, keeping every resource."""
    cloud = app[CLOUD_KEY]
    cloud.profile = profile
    cloud.clock.scale = profile.time_scale
    app[RNG_KEY].seed(profile.seed)


# ---- the middleware ---------------------------------------------------------------------------
def operation_key(request: web.Request) -> str:
    """The route name, or ``<service>.unknown`` for a path no route matches."""
    name = request.match_info.route.name
    if name:
        return name
    first = request.path.strip("/").split("/", 1)[0]
    return f"{first if first in SERVICE_PREFIXES else 'unknown'}.unknown"


def _is_public(key: str) -> bool:
    """Version documents and token creation need no token."""
    return key.endswith((".versions", ".version")) or key == "identity.tokens.create"


@web.middleware
async def simulator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cloud = cloud_of(request)
    key = operation_key(request)
    if key.startswith("sim."):
        return await handler(request)
    cloud.settle()
    cloud.calls[key] += 1
    service = key.split(".", 1)[0]
    try:
        if not _is_public(key):
            _authenticate(request)
        await asyncio.sleep(cloud.clock.real_seconds(_latency(cloud.profile, key, request)))
        if _inject_fault(request, key):
            response: web.StreamResponse = web.Response(status=500)
        else:
            response = await handler(request)
    except ApiError as exc:
        response = render_error(service, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render_error(service, ApiError(exc.status, exc.reason))
    if response.status >= 400:
        cloud.errors[key] += 1
    if service == "compute":
        response.headers["X-OpenStack-Nova-API-Version"] = response.headers.get(
            "X-OpenStack-Nova-API-Version", _microversion(request)
        )
        response.headers["OpenStack-API-Version"] = (
            "compute " + response.headers["X-OpenStack-Nova-API-Version"]
        )
        response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    return response


def _microversion(request: web.Request) -> str:
    """The compute microversion the client asked for (2.1 when it did not say)."""
    header = request.headers.get("OpenStack-API-Version", "")
    if header.startswith("compute "):
        return header.split(" ", 1)[1].strip()
    return request.headers.get("X-OpenStack-Nova-API-Version", COMPUTE_MICROVERSION)


def _authenticate(request: web.Request) -> None:
    token = keystone.validate(request.app, request.headers.get("X-Auth-Token", ""))
    if token is None:
        raise ApiError(401, "The request you have made requires authentication.")
    # The service modules read request["project_id"] etc. (the shared contract); aiohttp 3.14
    # warns on every new str key set through __setitem__, so write its state mapping directly.
    request._state.update(
        {"project_id": token.project_id, "user_id": token.user_id, "roles": list(token.roles)}
    )


def _latency(profile: Profile, key: str, request: web.Request) -> float:
    """Cloud seconds to wait: the most specific matching pattern wins, ``*`` is the default."""
    matches = [p for p in profile.latency if p != "*" and fnmatchcase(key, p)]
    pattern = max(matches, key=len) if matches else ("*" if "*" in profile.latency else None)
    if pattern is None:
        return 0.0
    latency: Latency = profile.latency[pattern]
    return latency.sample(request.app[RNG_KEY])


def _inject_fault(request: web.Request, key: str) -> bool:
    """Raise an injected 500/503, or drop the connection and return True (``reset``)."""
    rng = request.app[RNG_KEY]
    for fault in cloud_of(request).profile.faults.errors:
        if not fnmatchcase(key, fault.match) or rng.random() >= fault.rate:
            continue
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection drop mid-request
            return True
        status = 503 if fault.kind == "http_503" else 500
        raise ApiError(status, f"Injected fault ({fault.kind}) for {key}")
    return False


def render_error(service: str, exc: ApiError) -> web.Response:
    """``exc`` as the given service's real error body."""
    body: dict[str, Any]
    if service == "compute":
        body = {
            _NOVA_ERROR_KEYS.get(exc.status, "computeFault"): {
                "code": exc.status,
                "message": exc.message,
            }
        }
    elif service == "network":
        body = {"NeutronError": {"type": exc.kind, "message": exc.message, "detail": ""}}
    elif service == "load-balancer":
        body = {
            "faultcode": "Client" if exc.status < 500 else "Server",
            "faultstring": exc.message,
            "debuginfo": None,
        }
    else:
        body = {"error": {"code": exc.status, "title": exc.kind, "message": exc.message}}
    headers = {"WWW-Authenticate": 'Keystone uri="/identity"'} if exc.status == 401 else None
    return web.json_response(body, status=exc.status, headers=headers)
