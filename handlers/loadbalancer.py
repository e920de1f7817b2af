"""loadbalancer.ensure / loadbalancer.delete: the API load balancer and its VIP floating IP.

ensure, one step per run (the broker is the timer between them):
1. find the LB ``clusterbus-<cluster>-kubeapi`` by recorded ID, else name + tag; if missing,
   create it *fully populated* (listener TCP + pool + TCP health monitor per port in the same
   call: one PENDING_CREATE instead of four create/wait rounds) and answer later with
   ``loadbalancer.created`` so its ID is recorded at once (also when found by name only).
2. PENDING_* -> later (a busy 409 likewise, CAPO #1197); ERROR -> TerminalError.
3. ACTIVE: repair a missing listener/pool/monitor or changed allowed CIDRs, ONE change per run
   (each change puts the LB back in PENDING_UPDATE).
4. everything in place: the VIP floating IP (recorded ID, else ours by tag + description, else
   allocated already bound to the VIP port; only now, with the LB ACTIVE: CAPO #1114/#1159),
   then ``loadbalancer.ready``.

delete: release our VIP floating IP (disassociate + delete), ``DELETE ?cascade=true`` our LB,
poll while PENDING_DELETE until it is gone (then its VIP port is gone too, CAPO #2121).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from handlers.base import Deps, Event, Handler, Reply, TerminalError, cluster_tag, is_ours
from handlers.base import owned_tags as tags_of
from handlers.loadbalancer_common import (
    ACTIVE,
    ERROR,
    PENDING_DELETE,
    find_load_balancer,
    lb_name,
    poll_later,
    port_from_name,
    port_name,
    try_change,
    wanted_ports,
)
from handlers.loadbalancer_members import MEMBER_HANDLERS
from handlers.neutron_common import call, description, external_network, get_or_none, ignore_missing

MONITOR = {"type": "TCP", "delay": 10, "timeout": 5, "max_retries": 5, "max_retries_down": 3}


def fip_description(cluster_id: str) -> str:
    """Marks the VIP floating IP among the cluster's tagged ones (the bastion has its own)."""
    return f"{description(cluster_id)} kubeapi"


# ---- desired children ------------------------------------------------------------------------
def _algorithm(task: dict[str, Any], provider: str | None = None) -> str:
    return "SOURCE_IP_PORT" if (task.get("provider") or provider) == "ovn" else "ROUND_ROBIN"


def _cidrs(task: dict[str, Any]) -> list[str]:
    return sorted(set(task.get("allowed_cidrs") or []))


def _common(cid: str, port: int) -> dict[str, Any]:
    return {"name": port_name(cid, port), "tags": tags_of(cid)}


def _listener_spec(task: dict[str, Any], port: int) -> dict[str, Any]:
    spec = {**_common(task["cluster_id"], port), "protocol": "TCP", "protocol_port": port,
            "description": description(task["cluster_id"])}  # fmt: skip
    if _cidrs(task):
        spec["allowed_cidrs"] = _cidrs(task)
    return spec


def _pool_spec(task: dict[str, Any], port: int, provider: str | None = None) -> dict[str, Any]:
    return {**_common(task["cluster_id"], port), "protocol": "TCP",
            "lb_algorithm": _algorithm(task, provider),
            "description": description(task["cluster_id"])}  # fmt: skip


def _monitor_spec(task: dict[str, Any], port: int) -> dict[str, Any]:
    return {**_common(task["cluster_id"], port), **MONITOR}


def _create_fully_populated(conn: Any, task: dict[str, Any]) -> Any:
    listeners = [
        {**_listener_spec(task, port),
         "default_pool": {**_pool_spec(task, port), "healthmonitor": _monitor_spec(task, port)}}
        for port in wanted_ports(task)
    ]  # fmt: skip
    options = {"provider": task["provider"]} if task.get("provider") else {}
    return conn.load_balancer.create_load_balancer(
        name=lb_name(task["cluster_id"]), description=description(task["cluster_id"]),
        vip_subnet_id=task["subnet_id"], tags=tags_of(task["cluster_id"]),
        listeners=listeners, **options,
    )  # fmt: skip


# ---- the children that exist -----------------------------------------------------------------
@dataclass
class Children:
    """Our listeners and pools of one load balancer, by port."""

    listeners: dict[int, Any]
    pools: dict[int, Any]

    @classmethod
    def read(cls, conn: Any, cid: str, lb: Any) -> Children:
        """Two list calls; only children of this LB named like ours count."""
        return cls(
            _by_port(cid, conn.load_balancer.listeners(tags=cluster_tag(cid)), lb.listeners),
            _by_port(cid, conn.load_balancer.pools(tags=cluster_tag(cid)), lb.pools),
        )


def _by_port(cid: str, records: Any, on_lb: list[dict[str, Any]] | None) -> dict[int, Any]:
    ids = {ref["id"] for ref in on_lb or []}
    found: dict[int, Any] = {}
    for record in records:
        port = port_from_name(cid, record.name)
        if port is not None and record.id in ids:
            found.setdefault(port, record)
    return found


def _missing_change(
    conn: Any, task: dict[str, Any], lb: Any, have: Children
) -> Callable[[], Any] | None:
    """The first change the load balancer still needs (a call to make), None if complete."""
    lbc = conn.load_balancer
    for port in wanted_ports(task):
        listener = have.listeners.get(port)
        if listener is None:
            return partial(
                lbc.create_listener, load_balancer_id=lb.id, **_listener_spec(task, port)
            )
        if sorted(listener.allowed_cidrs or []) != _cidrs(task):
            return partial(lbc.update_listener, listener, allowed_cidrs=_cidrs(task) or None)
        pool = have.pools.get(port)
        if pool is None:
            spec = _pool_spec(task, port, lb.provider)
            return partial(lbc.create_pool, listener_id=listener.id, **spec)
        if not pool.health_monitor_id:
            return partial(lbc.create_health_monitor, pool_id=pool.id, **_monitor_spec(task, port))
    return None


# ---- the VIP floating IP ---------------------------------------------------------------------
def _our_vip_fips(conn: Any, task: dict[str, Any]) -> list[Any]:
    """Our VIP floating IPs: the recorded one if still ours, else by tag + description."""
    cid = task["cluster_id"]
    known = get_or_none(conn.network.get_ip, (task.get("known") or {}).get("floating_ip_id"))
    if known is not None and is_ours(known, cid):
        return [known]
    found = conn.network.ips(tags=cluster_tag(cid), description=fip_description(cid))
    return [f for f in found if is_ours(f, cid) and f.description == fip_description(cid)]


def _ensure_vip_fip(conn: Any, task: dict[str, Any], lb: Any) -> Any:
    cid = task["cluster_id"]
    found = _our_vip_fips(conn, task)
    if not found:
        # Allocated already bound to the VIP port: a failed association leaves no address behind.
        network = external_network(conn, task["external_network"])
        return conn.network.create_ip(
            floating_network_id=network.id, port_id=lb.vip_port_id,
            description=fip_description(cid), tags=tags_of(cid),
        )  # fmt: skip
    fip = found[0]
    if fip.port_id != lb.vip_port_id:
        fip = conn.network.update_ip(fip, port_id=lb.vip_port_id)
    return fip


# ---- ensure ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsureStep:
    """What one ensure run did: ``ready`` carries the loadbalancer.ready payload when done."""

    lb_id: str
    vip_port_id: str | None
    vip_address: str | None
    announce: bool  # the LB is not (yet) recorded: publish loadbalancer.created
    progressed: bool = False
    ready: dict[str, Any] | None = None


def _step(lb: Any, announce: bool, **rest: Any) -> EnsureStep:
    return EnsureStep(lb.id, lb.vip_port_id, lb.vip_address, announce, **rest)


def ensure_sync(conn: Any, task: dict[str, Any]) -> EnsureStep:
    cid, known = task["cluster_id"], task.get("known") or {}
    lb = find_load_balancer(conn, cid, known.get("loadbalancer_id"))
    if lb is None:
        return _step(_create_fully_populated(conn, task), True, progressed=True)
    announce = lb.id != known.get("loadbalancer_id")
    if lb.provisioning_status == ERROR:
        raise TerminalError(f"load balancer {lb.name} ({lb.id}) is in ERROR")
    if lb.provisioning_status != ACTIVE:
        return _step(lb, announce)
    have = Children.read(conn, cid, lb)
    change = _missing_change(conn, task, lb, have)
    if change is not None:  # one change per run: it puts the LB back in PENDING_UPDATE
        return _step(lb, announce, progressed=try_change(change))
    fip = _ensure_vip_fip(conn, task, lb)
    ports = wanted_ports(task)
    ready = {
        "cluster_id": cid, "loadbalancer_id": lb.id,
        "listener_ids": {p: have.listeners[p].id for p in ports},
        "pool_ids": {p: have.pools[p].id for p in ports},
        "monitor_ids": {p: have.pools[p].health_monitor_id for p in ports},
        "vip_address": lb.vip_address, "vip_port_id": lb.vip_port_id,
        "floating_ip_id": fip.id, "floating_ip": fip.floating_ip_address,
    }  # fmt: skip
    return _step(lb, announce, ready=ready)


async def handle_loadbalancer_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    step = await call(deps, task, ensure_sync, task)
    events: list[Event] = []
    if step.announce:
        events.append(Event("loadbalancer.created", {
            "cluster_id": task["cluster_id"], "loadbalancer_id": step.lb_id,
            "vip_port_id": step.vip_port_id, "vip_address": step.vip_address,
        }))  # fmt: skip
    if step.ready is not None:
        return Reply.done(*events, Event("loadbalancer.ready", step.ready))
    known = {**(task.get("known") or {}), "loadbalancer_id": step.lb_id,
             "vip_port_id": step.vip_port_id, "vip_address": step.vip_address}  # fmt: skip
    return poll_later(task, *events, progressed=step.progressed, known=known)


# ---- delete ----------------------------------------------------------------------------------
def _release_vip_fips(conn: Any, task: dict[str, Any]) -> None:
    """Disassociate and delete our VIP floating IPs (never one without our tag)."""
    for fip in _our_vip_fips(conn, task):
        if fip.port_id:
            ignore_missing(lambda fip=fip: conn.network.update_ip(fip, port_id=None))
        ignore_missing(lambda fip=fip: conn.network.delete_ip(fip, ignore_missing=False))


def delete_sync(conn: Any, task: dict[str, Any]) -> bool:
    """One delete step; True once our load balancer is gone."""
    known = task.get("known") or {}
    lb = find_load_balancer(conn, task["cluster_id"], known.get("loadbalancer_id"))
    if lb is not None and lb.provisioning_status == PENDING_DELETE:
        return False  # its floating IP went in the run that asked for the delete
    _release_vip_fips(conn, task)
    if lb is None:
        return True
    if lb.provisioning_status in (ACTIVE, ERROR):
        lbc = conn.load_balancer
        try_change(lambda: ignore_missing(
            lambda: lbc.delete_load_balancer(lb, ignore_missing=False, cascade=True)
        ))  # fmt: skip
    return False


async def handle_loadbalancer_delete(task: dict[str, Any], deps: Deps) -> Reply:
    if await call(deps, task, delete_sync, task):
        return Reply.done(Event("loadbalancer.deleted", {"cluster_id": task["cluster_id"]}))
    return poll_later(task)


HANDLERS: dict[str, Handler] = {
    "loadbalancer.ensure": handle_loadbalancer_ensure,
    "loadbalancer.delete": handle_loadbalancer_delete,
    **MEMBER_HANDLERS,
}
