"""Small HTTP helpers shared by the service modules of the simulator."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator.core import ApiError, Cloud

CLOUD_KEY: web.AppKey[Cloud] = web.AppKey("cloud", Cloud)


def cloud_of(request: web.Request) -> Cloud:
    return request.app[CLOUD_KEY]


def project_of(request: web.Request) -> str:
    """The project the request's token is scoped to (set by the auth middleware)."""
    return str(request["project_id"])


async def read_json(request: web.Request, *, wrapper: str | None = None) -> dict[str, Any]:
    """The JSON object body, unwrapped from ``{wrapper: {...}}`` when given; 400 otherwise."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Malformed request body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Malformed request body: expected a JSON object")
    if wrapper is None:
        return body
    inner = body.get(wrapper)
    if not isinstance(inner, dict):
        raise ApiError(400, f"Malformed request body: missing '{wrapper}' object")
    return inner


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


def query_filters(request: web.Request, *ignored: str) -> dict[str, str]:
    """Query parameters that are field filters (paging and field-selection keys removed)."""
    skip = {"limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse", *ignored}
    return {k: v for k, v in request.query.items() if k not in skip}
