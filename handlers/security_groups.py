"""security_groups.ensure / security_groups.delete: the controlplane, worker and bastion groups.

ensure: one list (our tag) finds the groups with their rules; missing groups are created first
(rules reference groups), then the rules are reconciled as a set against
``security_group_rules.desired_rules``: missing ones created in one bulk call, extra ones deleted
(Neutron's default egress rules are kept). With the bastion disabled, a bastion group left from
before is deleted best-effort (CAPO #2113). A second run with nothing to change is one call.

delete: each group by recorded ID or name (only if ours; 404 = done). Neutron's 409
SecurityGroupInUse (a port still uses it) -> TransientError, retried later.
"""

from __future__ import annotations

from typing import Any

from openstack import exceptions as os_exceptions

from handlers.base import (
    Deps,
    Event,
    Handler,
    Reply,
    TransientError,
    cluster_tag,
    is_ours,
    owned_tags,
)
from handlers.errors import openstack_message
from handlers.neutron_common import call, description
from handlers.security_group_rules import (
    BASTION,
    CONTROLPLANE,
    WORKER,
    Rule,
    RuleKey,
    desired_rules,
    is_default_egress,
    rule_key,
)

ROLES = (CONTROLPLANE, WORKER, BASTION)
_KNOWN_FIELD = {role: f"{role}_id" for role in ROLES}


def group_name(cluster_id: str, role: str) -> str:
    return f"clusterbus-{cluster_id}-{role}"


def _our_groups(conn: Any, task: dict[str, Any]) -> dict[str, Any]:
    """Role -> our existing group (with its rules): one list by our tag, matched by recorded ID
    first, else by name. A group without our tag is never ours, so no GET by ID is needed."""
    cid, known = task["cluster_id"], task.get("known") or {}
    tagged = [g for g in conn.network.security_groups(tags=cluster_tag(cid)) if is_ours(g, cid)]
    found: dict[str, Any] = {}
    for role in ROLES:
        known_id = known.get(_KNOWN_FIELD[role])
        by_id = [g for g in tagged if known_id and g.id == known_id]
        by_name = [g for g in tagged if g.name == group_name(cid, role)]
        if by_id or by_name:
            found[role] = (by_id or by_name)[0]
    return found


def _create_group(conn: Any, cid: str, role: str) -> Any:
    return conn.network.create_security_group(
        name=group_name(cid, role), description=description(cid), tags=owned_tags(cid)
    )


def _reconcile_rules(conn: Any, groups: dict[str, Any], desired: dict[str, list[Rule]]) -> None:
    """Create missing rules (one bulk call), delete extra ones (never the default egress)."""
    to_create: list[dict[str, Any]] = []
    for role, group in groups.items():
        wanted: dict[RuleKey, Rule] = {r.key: r for r in desired.get(role, [])}
        observed = {rule_key(r): r for r in group.security_group_rules or []}
        to_create += [rule.body(group.id) for key, rule in wanted.items() if key not in observed]
        for key, rule in observed.items():
            if key not in wanted and not is_default_egress(key):
                conn.network.delete_security_group_rule(rule["id"], ignore_missing=True)
    if to_create:
        list(conn.network.create_security_group_rules(to_create))


def _delete_group(conn: Any, group: Any, *, best_effort: bool = False) -> None:
    try:
        conn.network.delete_security_group(group, ignore_missing=True)
    except os_exceptions.ConflictException as exc:
        if not best_effort:
            raise TransientError(openstack_message(exc)) from exc


def ensure_security_groups_sync(conn: Any, task: dict[str, Any]) -> dict[str, str]:
    cid = task["cluster_id"]
    roles = [CONTROLPLANE, WORKER] + ([BASTION] if task["bastion_enabled"] else [])
    existing = _our_groups(conn, task)
    groups = {role: existing.get(role) or _create_group(conn, cid, role) for role in roles}
    ids = {role: group.id for role, group in groups.items()}
    _reconcile_rules(conn, groups, desired_rules(task, ids))
    if not task["bastion_enabled"] and BASTION in existing:
        _delete_group(conn, existing[BASTION], best_effort=True)
    return ids


async def handle_security_groups_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    ids = await call(deps, task, ensure_security_groups_sync, task)
    return Reply.done(
        Event(
            "security_groups.ready",
            {
                "cluster_id": task["cluster_id"],
                "controlplane_id": ids[CONTROLPLANE],
                "worker_id": ids[WORKER],
                "bastion_id": ids.get(BASTION),
            },
        )
    )


def delete_security_groups_sync(conn: Any, task: dict[str, Any]) -> None:
    # Bastion first: its group is the remote of SSH rules in the other two.
    groups = _our_groups(conn, task)
    for role in (BASTION, WORKER, CONTROLPLANE):
        if role in groups:
            _delete_group(conn, groups[role])


async def handle_security_groups_delete(task: dict[str, Any], deps: Deps) -> Reply:
    await call(deps, task, delete_security_groups_sync, task)
    return Reply.done(Event("security_groups.deleted", {"cluster_id": task["cluster_id"]}))


HANDLERS: dict[str, Handler] = {
    "security_groups.ensure": handle_security_groups_ensure,
    "security_groups.delete": handle_security_groups_delete,
}
