"""Nova plumbing shared by the compute modules: microversions, links, times, access scope."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import wraps

from aiohttp import web

from simulator.core import ApiError, Cloud, Record

PREFIX = "/compute/v2.1"
MIN_VERSION = (2, 1)
MAX_VERSION = (2, 79)
VERSION_KEY: web.RequestKey[tuple[int, int]] = web.RequestKey("nova_version", tuple)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def requested_version(request: web.Request) -> tuple[int, int]:
    """The microversion asked for in either header (2.1 when absent); 400/406 like Nova."""
    asked = ""
    for item in request.headers.get("OpenStack-API-Version", "").split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() == "compute":
            asked = value.strip()
    asked = asked or request.headers.get("X-OpenStack-Nova-API-Version", "").strip()
    if not asked:
        return MIN_VERSION
    if asked.lower() == "latest":
        return MAX_VERSION
    match = _VERSION_RE.match(asked)
    if match is None:
        raise ApiError(
            400,
            f"API Version String {asked} is of invalid format. Must be of format "
            "MajorNum.MinorNum.",
        )
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiError(
            406,
            f"Version {asked} is not supported by the API. Minimum is "
            f"{text(MIN_VERSION)} and maximum is {text(MAX_VERSION)}.",
        )
    return version


def versioned(handler: Handler) -> Handler:
    """Resolve the microversion before ``handler`` and echo it in the response headers."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        version = requested_version(request)
        request[VERSION_KEY] = version
        response = await handler(request)
        response.headers["X-OpenStack-Nova-API-Version"] = text(version)
        response.headers["OpenStack-API-Version"] = f"compute {text(version)}"
        response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    return wrapper


def version_of(request: web.Request) -> tuple[int, int]:
    version: tuple[int, int] = request.get(VERSION_KEY, MIN_VERSION)
    return version


def at_least(request: web.Request, minor: int) -> bool:
    """True when the request's microversion is 2.``minor`` or later."""
    return version_of(request) >= (2, minor)


def is_admin(request: web.Request) -> bool:
    return "admin" in (request.get("roles") or [])


def scope(request: web.Request) -> str | None:
    """Project whose records the caller may address by id: None (any) for the admin role."""
    return None if is_admin(request) else str(request["project_id"])


def origin(request: web.Request) -> str:
    return str(request.url.origin())


def links(request: web.Request, collection: str, resource_id: str) -> list[Record]:
    base = origin(request)
    return [
        {"rel": "self", "href": f"{base}{PREFIX}/{collection}/{resource_id}"},
        {"rel": "bookmark", "href": f"{base}/compute/{collection}/{resource_id}"},
    ]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def later_iso(cloud: Cloud, cloud_seconds: float) -> str:
    """Wall-clock timestamp at which ``cloud_seconds`` of simulated time will have passed."""
    return iso(datetime.now(UTC) + timedelta(seconds=cloud.clock.real_seconds(cloud_seconds)))


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid_input(field: str, detail: str) -> ApiError:
    """Nova's JSON-schema validation error."""
    return ApiError(400, f"Invalid input for field/attribute {field}. {detail}")
