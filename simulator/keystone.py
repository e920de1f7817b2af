"""Keystone v3: password and application-credential tokens, the service catalog, version docs.

Project and user ids are derived from their names (uuid5), so they stay the same across a
``/_sim/reset`` and a restart with ``--state``: tokens issued before a reset remain valid.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, read_json
from simulator.keystone_identity import (
    ADMIN,
    ADMIN_PASSWORD,
    DOMAIN,
    REGION,
    project_id_by_name,
    project_name,
    seed,
    stable_id,
)

# Re-exported: callers use ``keystone.ADMIN``, ``keystone.project_name`` ...
__all__ = [
    "ADMIN",
    "ADMIN_PASSWORD",
    "DOMAIN",
    "REGION",
    "TOKENS_KEY",
    "Token",
    "catalog",
    "project_id_by_name",
    "project_name",
    "seed",
    "setup",
    "stable_id",
    "token_body",
    "validate",
]

TOKEN_LIFETIME = timedelta(hours=12)

# service type -> (catalog name, path under the base URL)
SERVICES: dict[str, tuple[str, str]] = {
    "identity": ("keystone", "/identity/v3"),
    "compute": ("nova", "/compute/v2.1"),
    "network": ("neutron", "/network"),
    "load-balancer": ("octavia", "/load-balancer"),
    "image": ("glance", "/image"),
}


@dataclass(frozen=True)
class Token:
    """What a token stands for; the middleware copies it onto the request."""

    user_id: str
    project_id: str
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    expires_at: datetime
    app_credential_id: str | None = None


TOKENS_KEY: web.AppKey[dict[str, Token]] = web.AppKey("tokens", dict)


def validate(app: web.Application, token_id: str) -> Token | None:
    """The live token with this id, or None (unknown or expired)."""
    token = app[TOKENS_KEY].get(token_id)
    if token is None or token.expires_at <= datetime.now(UTC):
        return None
    return token


# ---- authentication --------------------------------------------------------------------------
def _authenticate(cloud: Cloud, auth: dict[str, Any]) -> Token:
    identity = auth.get("identity") or {}
    methods = tuple(identity.get("methods") or ())
    if "application_credential" in methods:
        return _by_app_credential(cloud, identity.get("application_credential") or {})
    if "password" in methods:
        user = _by_password(cloud, (identity.get("password") or {}).get("user") or {})
        project_id = _scope(cloud, auth.get("scope"), user)
        roles = user["_roles"].get(project_id)
        if not roles:
            raise ApiError(401, "The request you have made requires authentication.")
        return _new_token(user["id"], project_id, roles, ("password",))
    raise ApiError(401, "The request you have made requires authentication.")


def _by_password(cloud: Cloud, spec: dict[str, Any]) -> Record:
    for user in cloud.table("users").values():
        if spec.get("id") == user["id"] or spec.get("name") == user["name"]:
            if secrets.compare_digest(str(spec.get("password", "")), user["_password"]):
                return user
            break
    raise ApiError(401, "The request you have made requires authentication.")


def _by_app_credential(cloud: Cloud, spec: dict[str, Any]) -> Token:
    creds = cloud.table("application_credentials")
    cred = creds.get(str(spec.get("id", "")))
    if cred is None:
        cred = next((c for c in creds.values() if c["name"] == spec.get("name")), None)
    if cred is None or not secrets.compare_digest(str(spec.get("secret", "")), cred["_secret"]):
        raise ApiError(401, "The request you have made requires authentication.")
    roles = [r["name"] for r in cred["roles"]]
    return _new_token(
        cred["user_id"],
        cred["project_id"],
        roles,
        ("application_credential",),
        app_credential_id=cred["id"],
    )


def _scope(cloud: Cloud, scope: Any, user: Record) -> str:
    """The project id the token is scoped to (the user's default project when unscoped)."""
    if not isinstance(scope, dict) or "project" not in scope:
        return str(user["default_project_id"])
    spec = scope["project"] or {}
    project_id = project_id_by_name(cloud, str(spec.get("id") or spec.get("name") or ""))
    if project_id is None:
        raise ApiError(401, "The request you have made requires authentication.")
    return project_id


def _new_token(
    user_id: str,
    project_id: str,
    roles: list[str],
    methods: tuple[str, ...],
    app_credential_id: str | None = None,
) -> Token:
    return Token(
        user_id,
        project_id,
        tuple(roles),
        methods,
        datetime.now(UTC) + TOKEN_LIFETIME,
        app_credential_id,
    )


# ---- rendering --------------------------------------------------------------------------------
def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def catalog(base_url: str) -> list[Record]:
    """The service catalog: every service with public/internal/admin endpoints."""
    entries = []
    for service_type, (name, path) in SERVICES.items():
        endpoints = [
            {
                "id": stable_id("endpoint", f"{service_type}-{iface}"),
                "interface": iface,
                "region": REGION,
                "region_id": REGION,
                "url": base_url + path,
            }
            for iface in ("public", "internal", "admin")
        ]
        entries.append(
            {
                "id": stable_id("service", service_type),
                "type": service_type,
                "name": name,
                "endpoints": endpoints,
            }
        )
    return entries


def token_body(cloud: Cloud, token: Token, base_url: str) -> Record:
    user = cloud.table("users")[token.user_id]
    body: Record = {
        "methods": list(token.methods),
        "user": {
            "id": user["id"],
            "name": user["name"],
            "domain": DOMAIN,
            "password_expires_at": None,
        },
        "project": {
            "id": token.project_id,
            "name": project_name(cloud, token.project_id),
            "domain": DOMAIN,
        },
        "roles": [{"id": stable_id("role", r), "name": r} for r in token.roles],
        "is_domain": False,
        "expires_at": _iso(token.expires_at),
        "issued_at": _iso(token.expires_at - TOKEN_LIFETIME),
        "audit_ids": [secrets.token_urlsafe(16)],
        "catalog": catalog(base_url),
    }
    if token.app_credential_id:
        body["application_credential"] = {
            "id": token.app_credential_id,
            "name": token.app_credential_id,
            "restricted": True,
        }
    return {"token": body}


def _base(request: web.Request) -> str:
    return str(request.url.origin())


def _version_v3(request: web.Request) -> Record:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{_base(request)}/identity/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


# ---- handlers ---------------------------------------------------------------------------------
async def versions(request: web.Request) -> web.Response:
    return json_response({"versions": {"values": [_version_v3(request)]}}, status=300)


async def version(request: web.Request) -> web.Response:
    return json_response({"version": _version_v3(request)})


async def issue_token(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    token = _authenticate(cloud, await read_json(request, wrapper="auth"))
    token_id = "gAAAA" + secrets.token_urlsafe(48)
    request.app[TOKENS_KEY][token_id] = token
    body = token_body(cloud, token, _base(request))
    return json_response(body, status=201, headers={"X-Subject-Token": token_id})


async def check_token(request: web.Request) -> web.Response:
    token_id = request.headers.get("X-Subject-Token", "")
    token = validate(request.app, token_id)
    if token is None:
        raise ApiError(404, f"Could not find token: {token_id[:8]}...")
    body = token_body(cloud_of(request), token, _base(request))
    return json_response(body, headers={"X-Subject-Token": token_id})


async def revoke_token(request: web.Request) -> web.Response:
    request.app[TOKENS_KEY].pop(request.headers.get("X-Subject-Token", ""), None)
    return web.Response(status=204)


async def list_projects(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    visible = [
        p
        for p in cloud.table("projects").values()
        if ADMIN in request["roles"] or p["id"] == request["project_id"]
    ]
    return json_response({"projects": [_public(p) for p in visible], "links": {}})


async def show_project(request: web.Request) -> web.Response:
    record = cloud_of(request).get("projects", request.match_info["project_id"])
    if ADMIN not in request["roles"] and record["id"] != request["project_id"]:
        raise ApiError(403, "You are not authorized to perform the requested action.")
    return json_response({"project": _public(record)})


def _public(record: Record) -> Record:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def setup(app: web.Application, cloud: Cloud) -> None:
    app.setdefault(TOKENS_KEY, {})
    seed(cloud)
    route = app.router.add_route
    route("GET", "/identity{slash:/?}", versions, name="identity.versions")
    route("GET", "/identity/v3{slash:/?}", version, name="identity.version")
    route("POST", "/identity/v3/auth/tokens", issue_token, name="identity.tokens.create")
    route("GET", "/identity/v3/auth/tokens", check_token, name="identity.tokens.show")
    route("DELETE", "/identity/v3/auth/tokens", revoke_token, name="identity.tokens.delete")
    route("GET", "/identity/v3/projects", list_projects, name="identity.projects.list")
    route("GET", "/identity/v3/projects/{project_id}", show_project, name="identity.projects.show")
