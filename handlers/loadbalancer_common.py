"""Octavia helpers shared by the load balancer and member handlers: names, look-ups, busy 409s.

Octavia lets a load balancer change only while it is ACTIVE: every change to it or a child puts
it in PENDING_UPDATE for a while, and a change attempted meanwhile answers 409 ("Invalid state
PENDING_UPDATE ..." / "... is immutable ..."). That 409 means "try later", never a failure
(CAPO #1197), so handlers make one change per run and poll through ``Reply.later``.
Everything here except ``poll_later`` is synchronous: it runs inside ``deps.clouds.run``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from openstack import exceptions as os_exceptions

from handlers.base import Reply, backoff_ms
from handlers.errors import openstack_message
from handlers.neutron_common import find_owned

ACTIVE = "ACTIVE"
ERROR = "ERROR"
PENDING_DELETE = "PENDING_DELETE"

# A poll keeps ``attempt`` at most this, so a load balancer stuck for hours neither overflows the
# task's attempt field nor stretches the delay beyond backoff_ms's cap (2**5 s > 30 s).
MAX_POLL_ATTEMPT = 10


def lb_name(cluster_id: str) -> str:
    return f"clusterbus-{cluster_id}-kubeapi"


def port_name(cluster_id: str, port: int) -> str:
    """Name of the listener, pool and health monitor for one port."""
    return f"{lb_name(cluster_id)}-{port}"


def member_name(cluster_id: str, port: int, machine_id: str) -> str:
    return f"{port_name(cluster_id, port)}-{machine_id}"


def port_from_name(cluster_id: str, name: str | None) -> int | None:
    """The port in one of our listener/pool names, None for any other name."""
    match = re.fullmatch(re.escape(lb_name(cluster_id)) + r"-(\d{1,5})", name or "")
    return int(match.group(1)) if match else None


def wanted_ports(task: dict[str, Any]) -> list[int]:
    """The API port first, then the extra ports, without duplicates."""
    ports = [int(task.get("api_port") or 6443), *(int(p) for p in task.get("extra_ports") or [])]
    return list(dict.fromkeys(ports))


def find_load_balancer(conn: Any, cluster_id: str, known_id: str | None) -> Any | None:
    """Our load balancer: by recorded ID (if ours), else by name + our tag."""
    return find_owned(
        conn.load_balancer.load_balancers, cluster_id, known_id,
        conn.load_balancer.get_load_balancer, name=lb_name(cluster_id),
    )  # fmt: skip


def is_busy(exc: BaseException) -> bool:
    """Octavia's 409 for a change while the load balancer is PENDING_* (retry later)."""
    if not isinstance(exc, os_exceptions.ConflictException):
        return False
    message = openstack_message(exc)
    return "immutable" in message or "Invalid state" in message or "PENDING_" in message


def try_change(action: Callable[[], Any]) -> bool:
    """Run one mutation; False when the load balancer was busy (409 PENDING_*)."""
    try:
        action()
    except os_exceptions.ConflictException as exc:
        if is_busy(exc):
            return False
        raise
    return True


def status_tree(conn: Any, lb_id: str) -> dict[str, Any]:
    """The load balancer's status tree: listeners > pools > members in ONE call.

    ``GET /lbaas/loadbalancers/{id}/status`` carries every member's name, address, port and
    statuses, so member handlers need no list per pool.
    """
    response = conn.load_balancer.get(f"/lbaas/loadbalancers/{lb_id}/status")
    os_exceptions.raise_from_response(response)
    tree: dict[str, Any] = response.json()["statuses"]["loadbalancer"]
    return tree


def tree_pools(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pool in a status tree (pools hang off listeners), each once."""
    pools: dict[str, dict[str, Any]] = {}
    for listener in tree.get("listeners") or []:
        for pool in listener.get("pools") or []:
            pools.setdefault(pool["id"], pool)
    return list(pools.values())


def poll_later(
    task: dict[str, Any], *events: Any, progressed: bool = False, **learned: Any
) -> Reply:
    """Reply.later with backoff; after a change the backoff starts again from 1 s."""
    attempt = 0 if progressed else min(int(task.get("attempt") or 0), MAX_POLL_ATTEMPT)
    delay = backoff_ms(0 if progressed else attempt)
    return Reply.later(task, delay, *events, attempt=attempt, **learned)
