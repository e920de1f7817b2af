"""How Octavia records look to clients: relations and operating statuses, computed on read.

Operating status follows the health monitor's view of the members and rolls up: a member is
ONLINE once its pool has a monitor, a server owns its address, that server is ACTIVE and
``delays.member_online`` has passed since the member was created; pools, listeners and the
load balancer turn DEGRADED (or ERROR for a pool with no healthy member) from there.
"""

from __future__ import annotations

from simulator import nova
from simulator.core import Cloud, Record, public
from simulator.octavia_common import PENDING_CREATE, children, monitor_of

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"
DEGRADED = "DEGRADED"
ERROR = "ERROR"
NO_MONITOR = "NO_MONITOR"
_HEALTHY = (ONLINE, NO_MONITOR)


def _dormant(record: Record) -> bool:
    """Not carrying traffic yet: being created, or administratively down."""
    return record["provisioning_status"] == PENDING_CREATE or not record.get("admin_state_up", True)


def online_at(cloud: Cloud, member: Record) -> float:
    """The monotonic time from which a healthy member's checks pass."""
    due = float(member.get("_online_at", 0.0))
    # a state file from another process carries another monotonic epoch: treat it as passed
    if due - cloud.clock.now() > cloud.clock.real_seconds(cloud.profile.delays.member_online):
        return 0.0
    return due


def member_status(cloud: Cloud, member: Record) -> str:
    if not member.get("admin_state_up", True):
        return OFFLINE
    if monitor_of(cloud, member["_pool_id"]) is None:
        return NO_MONITOR
    server = nova.server_for_address(cloud, member["address"])
    if server is None:
        return ERROR
    if server.get("status") == "ACTIVE" and cloud.clock.now() >= online_at(cloud, member):
        return ONLINE
    return OFFLINE


def pool_status(cloud: Cloud, pool: Record) -> str:
    if _dormant(pool):
        return OFFLINE
    states = [member_status(cloud, m) for m in children(cloud, "members", "_pool_id", pool["id"])]
    down = [s for s in states if s not in _HEALTHY]
    if not down:
        return ONLINE
    return ERROR if len(down) == len(states) else DEGRADED


def listener_status(cloud: Cloud, listener: Record) -> str:
    if _dormant(listener):
        return OFFLINE
    pool = cloud.table("pools").get(str(listener.get("default_pool_id")))
    if pool is not None and pool_status(cloud, pool) in (DEGRADED, ERROR):
        return DEGRADED
    return ONLINE


def lb_status(cloud: Cloud, lb: Record) -> str:
    if _dormant(lb):
        return OFFLINE
    listeners = children(cloud, "listeners", "_lb_id", lb["id"])
    pools = children(cloud, "pools", "_lb_id", lb["id"])
    if any(listener_status(cloud, li) == DEGRADED for li in listeners) or any(
        pool_status(cloud, p) in (DEGRADED, ERROR) for p in pools
    ):
        return DEGRADED
    return ONLINE


def _ids(records: list[Record]) -> list[Record]:
    return [{"id": r["id"]} for r in records]


# ---- renderers: the API representation of each kind ------------------------------------------
def render_lb(cloud: Cloud, lb: Record) -> Record:
    body = public(lb)
    body["listeners"] = _ids(children(cloud, "listeners", "_lb_id", lb["id"]))
    body["pools"] = _ids(children(cloud, "pools", "_lb_id", lb["id"]))
    body["operating_status"] = lb_status(cloud, lb)
    return body


def render_listener(cloud: Cloud, listener: Record) -> Record:
    body = public(listener)
    if body.get("default_pool_id") not in cloud.table("pools"):
        body["default_pool_id"] = None  # its pool was deleted since
    body["loadbalancers"] = [{"id": listener["_lb_id"]}]
    body["operating_status"] = listener_status(cloud, listener)
    return body


def render_pool(cloud: Cloud, pool: Record) -> Record:
    body = public(pool)
    monitor = monitor_of(cloud, pool["id"])
    users = cloud.list("listeners", None, lambda li: li.get("default_pool_id") == pool["id"])
    body["loadbalancers"] = [{"id": pool["_lb_id"]}]
    body["listeners"] = _ids(users)
    body["members"] = _ids(children(cloud, "members", "_pool_id", pool["id"]))
    body["healthmonitor_id"] = monitor["id"] if monitor else None
    body["operating_status"] = pool_status(cloud, pool)
    return body


def render_member(cloud: Cloud, member: Record) -> Record:
    body = public(member)
    body["operating_status"] = member_status(cloud, member)
    return body


def render_monitor(cloud: Cloud, monitor: Record) -> Record:
    body = public(monitor)
    body["pools"] = [{"id": monitor["_pool_id"]}]
    body["operating_status"] = OFFLINE if _dormant(monitor) else ONLINE
    return body


# ---- the status tree (GET /lbaas/loadbalancers/{id}/status) -----------------------------------
def _node(record: Record, operating_status: str, *fields: str) -> Record:
    node = {"id": record["id"], "name": record.get("name", "")}
    node.update({f: record.get(f) for f in fields})
    node["provisioning_status"] = record["provisioning_status"]
    node["operating_status"] = operating_status
    return node


def _pool_node(cloud: Cloud, pool: Record) -> Record:
    node = _node(pool, pool_status(cloud, pool))
    node["members"] = [
        _node(m, member_status(cloud, m), "address", "protocol_port")
        for m in children(cloud, "members", "_pool_id", pool["id"])
    ]
    monitor = monitor_of(cloud, pool["id"])
    if monitor is not None:
        node["health_monitor"] = _node(
            monitor, render_monitor(cloud, monitor)["operating_status"], "type"
        )
    return node


def status_tree(cloud: Cloud, lb: Record) -> Record:
    """The ``statuses`` body: listeners with their pools, members and monitors."""
    listeners = []
    for listener in children(cloud, "listeners", "_lb_id", lb["id"]):
        node = _node(listener, listener_status(cloud, listener))
        pool = cloud.table("pools").get(str(listener.get("default_pool_id")))
        node["pools"] = [_pool_node(cloud, pool)] if pool is not None else []
        listeners.append(node)
    root = _node(lb, lb_status(cloud, lb))
    root["listeners"] = listeners
    return {"statuses": {"loadbalancer": root}}
