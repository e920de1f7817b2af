"""Neutron security groups and their rules over HTTP (rule logic: ``neutron_sgrules``).

Rules live in their own kind (``security_group_rules``) and are embedded in the group when
it is rendered.
"""

from __future__ import annotations

from aiohttp import web

from simulator.core import Cloud, Record, public
from simulator.http import cloud_of, json_response, no_content, read_json
from simulator.neutron_base import (
    add_collection,
    check_quota,
    list_response,
    neutron_error,
    owner_for,
    scope,
    show_response,
    touch,
    updatable,
)
from simulator.neutron_sgrules import (
    DEFAULT,
    create_rule,
    ensure_default_group,
    group_not_found,
    new_group,
)


def render_group(cloud: Cloud, group: Record) -> Record:
    body = public(group)
    body["security_group_rules"] = [
        public(r)
        for r in cloud.list(
            "security_group_rules", None, lambda r: r["security_group_id"] == group["id"]
        )
    ]
    return body


def resolve_security_group(cloud: Cloud, project_id: str, name_or_id: str) -> Record:
    """The project's group with that id or name; 404 if none, 409 if the name is ambiguous."""
    if name_or_id == DEFAULT:
        return ensure_default_group(cloud, project_id)
    found = cloud.find("security_groups", name_or_id, project_id)
    if found is not None:
        return found
    named = cloud.list("security_groups", project_id, lambda g: g["name"] == name_or_id)
    if not named:
        raise group_not_found(name_or_id)
    if len(named) > 1:
        raise neutron_error(
            409,
            "Conflict",
            f"Multiple security_group matches found for name '{name_or_id}', use an ID to be "
            "more specific.",
        )
    return named[0]


def delete_group(cloud: Cloud, group: Record) -> None:
    """Delete a group and its rules, and rules of other groups that name it as remote group."""
    for rule in cloud.list(
        "security_group_rules",
        None,
        lambda r: group["id"] in (r["security_group_id"], r["remote_group_id"]),
    ):
        cloud.remove("security_group_rules", rule["id"])
    cloud.remove("security_groups", group["id"])


def _ensure_caller_default(request: web.Request) -> None:
    ensure_default_group(cloud_of(request), str(request["project_id"]))


async def list_groups(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    _ensure_caller_default(request)
    groups = cloud.list("security_groups", scope(request))
    return list_response(request, "security_groups", groups, lambda g: render_group(cloud, g))


async def create_group(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    body = await read_json(request, wrapper="security_group")
    project_id = owner_for(request, body)
    ensure_default_group(cloud, project_id)
    name = str(body.get("name") or "")
    if name == DEFAULT:
        raise neutron_error(
            409, "SecurityGroupDefaultAlreadyExists", "Default security group already exists."
        )
    check_quota(cloud, project_id, "security_group")
    group = new_group(cloud, project_id, name, str(body.get("description") or ""))
    group["stateful"] = bool(body.get("stateful", True))
    group["tags"] = list(body.get("tags") or [])
    return json_response({"security_group": render_group(cloud, group)}, status=201)


def _group(request: web.Request) -> Record:
    group_id = request.match_info["id"]
    group = cloud_of(request).find("security_groups", group_id, scope(request))
    if group is None:
        raise group_not_found(group_id)
    return group


async def show_group(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    return show_response(
        request, "security_group", _group(request), lambda g: render_group(cloud, g)
    )


async def update_group(request: web.Request) -> web.Response:
    group = _group(request)
    body = updatable(
        await read_json(request, wrapper="security_group"),
        {"name", "description", "stateful"},
        "security_group",
    )
    if group["name"] == DEFAULT and body.get("name", DEFAULT) != DEFAULT:
        raise neutron_error(
            409, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed."
        )
    group.update(body)
    touch(group)
    return json_response({"security_group": render_group(cloud_of(request), group)})


async def delete_group_handler(request: web.Request) -> web.Response:
    cloud, group = cloud_of(request), _group(request)
    if group["name"] == DEFAULT and "admin" not in (request.get("roles") or []):
        raise neutron_error(
            409,
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        )
    if cloud.list("ports", None, lambda p: group["id"] in p.get("security_groups", [])):
        raise neutron_error(409, "SecurityGroupInUse", f"Security Group {group['id']} in use.")
    delete_group(cloud, group)
    return no_content()


async def list_rules(request: web.Request) -> web.Response:
    _ensure_caller_default(request)
    rules = cloud_of(request).list("security_group_rules", scope(request))
    return list_response(request, "security_group_rules", rules)


async def create_rules(request: web.Request) -> web.Response:
    """POST one rule (``security_group_rule``) or several (``security_group_rules``)."""
    cloud = cloud_of(request)
    body = await read_json(request)
    if isinstance(body.get("security_group_rules"), list):
        rules = [create_rule(cloud, scope(request), dict(r)) for r in body["security_group_rules"]]
        return json_response({"security_group_rules": [public(r) for r in rules]}, status=201)
    one = await read_json(request, wrapper="security_group_rule")
    return json_response(
        {"security_group_rule": public(create_rule(cloud, scope(request), one))}, status=201
    )


def _rule(request: web.Request) -> Record:
    rule_id = request.match_info["id"]
    rule = cloud_of(request).find("security_group_rules", rule_id, scope(request))
    if rule is None:
        raise neutron_error(
            404, "SecurityGroupRuleNotFound", f"Security group rule {rule_id} does not exist"
        )
    return rule


async def show_rule(request: web.Request) -> web.Response:
    return show_response(request, "security_group_rule", _rule(request))


async def delete_rule(request: web.Request) -> web.Response:
    cloud, rule = cloud_of(request), _rule(request)
    cloud.remove("security_group_rules", rule["id"])
    group = cloud.find("security_groups", rule["security_group_id"])
    if group is not None:
        touch(group)
    return no_content()


def setup_routes(app: web.Application) -> None:
    add_collection(
        app, "security-groups", list=list_groups, create=create_group, show=show_group,
        update=update_group, delete=delete_group_handler,
    )  # fmt: skip
    add_collection(
        app, "security-group-rules", list=list_rules, create=create_rules, show=show_rule,
        delete=delete_rule,
    )  # fmt: skip
