"""Nova os-server-groups: placement policies whose members are servers booted with the hint."""

from __future__ import annotations

import uuid

from aiohttp import web

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, project_of, read_json
from simulator.nova_common import at_least, invalid_input, is_admin, scope

POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")


def _policy(request: web.Request, body: Record) -> tuple[str, Record]:
    """(policy, rules) from a pre-2.64 ``policies`` list or a 2.64+ ``policy`` + ``rules``."""
    if at_least(request, 64):
        policy, rules = body.get("policy"), body.get("rules") or {}
        if not isinstance(rules, dict):
            raise invalid_input("rules", f"{rules!r} is not of type 'object'")
        if rules and policy != "anti-affinity":
            raise ApiError(400, "Only anti-affinity policy supports rules.")
    else:
        policies = body.get("policies")
        if not isinstance(policies, list) or len(policies) != 1:
            raise invalid_input(
                "policies", f"{policies!r} is not valid under any of the given schemas"
            )
        policy, rules = policies[0], {}
    if policy not in POLICIES:
        raise invalid_input("policy", f"'{policy}' is not one of {list(POLICIES)}")
    return str(policy), dict(rules)


def resolve(cloud: Cloud, project_id: str | None, group_id: object) -> Record:
    """The group named by a scheduler hint: 400 if not a UUID, 404 if unknown (like Nova)."""
    try:
        uuid.UUID(str(group_id))
    except ValueError as exc:
        raise invalid_input("group", f"'{group_id}' is not a 'uuid'") from exc
    group = cloud.find("server_groups", str(group_id), project_id)
    if group is None:
        raise ApiError(404, f"Instance group {group_id} could not be found.")
    return group


def remove_member(cloud: Cloud, server_id: str) -> None:
    for group in cloud.list("server_groups"):
        if server_id in group["members"]:
            group["members"].remove(server_id)


def _render(request: web.Request, group: Record) -> Record:
    body: Record = {"id": group["id"], "name": group["name"], "members": list(group["members"])}
    if at_least(request, 64):
        body.update(policy=group["policy"], rules=dict(group["rules"]))
    else:
        body.update(policies=[group["policy"]], metadata={})
    if at_least(request, 13):
        body.update(project_id=group["project_id"], user_id=group["user_id"])
    return body


async def create_server_group(request: web.Request) -> web.Response:
    body = await read_json(request, wrapper="server_group")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise invalid_input("name", f"'{name}' is not a valid name")
    policy, rules = _policy(request, body)
    cloud = cloud_of(request)
    project_id = project_of(request)
    group = cloud.add(
        "server_groups",
        {
            "id": cloud.new_id(),
            "name": name,
            "policy": policy,
            "rules": rules,
            "members": [],
            "project_id": project_id,
            "user_id": str(request["user_id"]),
        },
        project_id,
    )
    return json_response({"server_group": _render(request, group)})


async def list_server_groups(request: web.Request) -> web.Response:
    all_projects = request.query.get("all_projects", "").lower() in ("1", "true", "yes")
    project = None if all_projects and is_admin(request) else project_of(request)
    groups = cloud_of(request).list(
        "server_groups",
        project,
        lambda g: g["project_id"] is not None and (project is None or g["project_id"] == project),
    )
    offset = request.query.get("offset", "")
    if offset.isdigit():
        groups = groups[int(offset) :]
    limit = request.query.get("limit", "")
    if limit.isdigit():
        groups = groups[: int(limit)]
    return json_response({"server_groups": [_render(request, g) for g in groups]})


def _get(request: web.Request) -> Record:
    group_id = request.match_info["group_id"]
    group = cloud_of(request).find("server_groups", group_id, scope(request))
    if group is None:
        raise ApiError(404, f"Instance group {group_id} could not be found.")
    return group


async def show_server_group(request: web.Request) -> web.Response:
    return json_response({"server_group": _render(request, _get(request))})


async def delete_server_group(request: web.Request) -> web.Response:
    group = _get(request)
    cloud_of(request).remove("server_groups", group["id"])
    return web.Response(status=204)
