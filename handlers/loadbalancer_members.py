"""member.ensure / member.poll / member.delete: a control-plane machine in the API load balancer.

A machine has one member per pool (per API port), named ``clusterbus-<cluster>-kubeapi-<port>-
<machine>``. Each run reads the LB's status tree (one call: every pool with its members), makes
at most ONE change (each puts the LB in PENDING_UPDATE) and answers later until every member is
ACTIVE (ensure) or gone (delete). ``node_ready`` is the probe ``member.poll`` waits on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from openstack import exceptions as os_exceptions

from handlers.base import Deps, Event, Handler, Reply, TerminalError, owned_tags
from handlers.loadbalancer_common import (
    ACTIVE,
    ERROR,
    PENDING_DELETE,
    find_load_balancer,
    member_name,
    poll_later,
    port_from_name,
    status_tree,
    tree_pools,
    try_change,
)
from handlers.neutron_common import call, ignore_missing


@dataclass(frozen=True)
class PoolMembers:
    """One of our pools in the status tree: its port and the machine's members in it."""

    pool_id: str
    port: int
    members: list[dict[str, Any]]


def _machine_pools(task: dict[str, Any], tree: dict[str, Any]) -> list[PoolMembers]:
    """Our pools (by name, or the task's pool_id) with the members that belong to the machine."""
    cid, machine = task["cluster_id"], task["machine_id"]
    found = []
    for pool in tree_pools(tree):
        port = port_from_name(cid, pool.get("name"))
        if port is None and pool["id"] == task.get("pool_id"):
            port = int(task.get("port") or 6443)
        if port is None:
            continue
        name = member_name(cid, port, machine)
        mine = [
            m for m in pool.get("members") or []
            if m.get("name") == name or m["id"] == task.get("member_id")
        ]  # fmt: skip
        found.append(PoolMembers(pool["id"], port, mine))
    return found


def _delete_member(lbc: Any, member_id: str, pool_id: str) -> None:
    ignore_missing(lambda: lbc.delete_member(member_id, pool_id, ignore_missing=False))


# ---- ensure ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberStep:
    done: bool
    progressed: bool = False
    member_id: str | None = None


def _stale(pool: PoolMembers, address: str) -> list[dict[str, Any]]:
    """The machine's members that point elsewhere (a rebuilt server got another address)."""
    return [m for m in pool.members if m["address"] != address or m["protocol_port"] != pool.port]


def _fix_pool(conn: Any, task: dict[str, Any], pool: PoolMembers) -> bool:
    """One change for this pool (delete a stale member, else create it): False when busy."""
    lbc, address = conn.load_balancer, task["address"]
    for member in _stale(pool, address):
        return try_change(partial(_delete_member, lbc, member["id"], pool.pool_id))
    name = member_name(task["cluster_id"], pool.port, task["machine_id"])
    return try_change(lambda: lbc.create_member(
        pool.pool_id, name=name, address=address, protocol_port=pool.port,
        tags=owned_tags(task["cluster_id"]),
    ))  # fmt: skip


def ensure_member_sync(conn: Any, task: dict[str, Any]) -> MemberStep:
    tree = status_tree(conn, task["loadbalancer_id"])
    status = tree["provisioning_status"]
    if status == ERROR:
        raise TerminalError(f"load balancer {task['loadbalancer_id']} is in ERROR")
    pools = _machine_pools(task, tree)
    if not any(p.pool_id == task["pool_id"] for p in pools):
        raise TerminalError(
            f"pool {task['pool_id']} is not on load balancer {task['loadbalancer_id']}"
        )
    for pool in pools:
        if not pool.members or _stale(pool, task["address"]):
            if status != ACTIVE:
                return MemberStep(done=False)  # a change now would only answer 409
            return MemberStep(done=False, progressed=_fix_pool(conn, task, pool))
    if status != ACTIVE or any(
        m["provisioning_status"] != ACTIVE for p in pools for m in p.members
    ):
        return MemberStep(done=False)
    main = next(p for p in pools if p.pool_id == task["pool_id"])
    return MemberStep(done=True, member_id=main.members[0]["id"])


async def handle_member_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    step = await call(deps, task, ensure_member_sync, task)
    if not step.done:
        return poll_later(task, progressed=step.progressed)
    data = {"cluster_id": task["cluster_id"], "machine_id": task["machine_id"],
            "member_id": step.member_id}  # fmt: skip
    return Reply.done(Event("member.added", data))


# ---- poll ------------------------------------------------------------------------------------
def node_ready(conn: Any, task: dict[str, Any]) -> bool:
    """Is the machine's API server serving? Here: Octavia's health monitor sees it ONLINE.

    The one place to swap in a real Kubernetes check (node Ready through the cluster API).
    """
    member = conn.load_balancer.get_member(task["member_id"], task["pool_id"])
    return bool(member.operating_status == "ONLINE")


async def handle_member_poll(task: dict[str, Any], deps: Deps) -> Reply:
    if await call(deps, task, node_ready, task):
        data = {"cluster_id": task["cluster_id"], "machine_id": task["machine_id"]}
        return Reply.done(Event("member.online", data))
    return poll_later(task)


# ---- delete ----------------------------------------------------------------------------------
def delete_member_sync(conn: Any, task: dict[str, Any]) -> MemberStep:
    lb_id = task.get("loadbalancer_id")
    if not lb_id:
        lb = find_load_balancer(conn, task["cluster_id"], None)
        if lb is None:
            return MemberStep(done=True)
        lb_id = lb.id
    try:
        tree = status_tree(conn, lb_id)
    except os_exceptions.NotFoundException:  # the load balancer and its members are gone
        return MemberStep(done=True)
    status = tree["provisioning_status"]
    if status in (ERROR, PENDING_DELETE):
        return MemberStep(done=True)  # not changeable; loadbalancer.delete cascades its members
    left = [(p, m) for p in _machine_pools(task, tree) for m in p.members]
    waiting = [m for _, m in left if m["provisioning_status"] == PENDING_DELETE]
    if len(waiting) == len(left):
        return MemberStep(done=not left)
    if status != ACTIVE:
        return MemberStep(done=False)
    pool, member = next((p, m) for p, m in left if m["provisioning_status"] != PENDING_DELETE)
    changed = try_change(partial(_delete_member, conn.load_balancer, member["id"], pool.pool_id))
    return MemberStep(done=False, progressed=changed)


async def handle_member_delete(task: dict[str, Any], deps: Deps) -> Reply:
    step = await call(deps, task, delete_member_sync, task)
    if not step.done:
        return poll_later(task, progressed=step.progressed)
    data = {"cluster_id": task["cluster_id"], "machine_id": task["machine_id"]}
    return Reply.done(Event("member.deleted", data))


MEMBER_HANDLERS: dict[str, Handler] = {
    "member.ensure": handle_member_ensure,
    "member.poll": handle_member_poll,
    "member.delete": handle_member_delete,
}
