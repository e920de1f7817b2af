"""Record the OpenStack IDs an event carries, in the same step that learns them."""

from __future__ import annotations

from typing import Any

from statemachines.context import Ctx
from statemachines.model import Json, MachineAggregate
from statemachines.states import API_PORT

# Event type -> (part in ``ids``, fields it may carry).
_PART_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "network.ready": ("network", ("network_id", "subnet_id", "router_id")),
    "security_groups.ready": ("security_groups", ("controlplane_id", "worker_id", "bastion_id")),
    "loadbalancer.created": ("loadbalancer", ("loadbalancer_id", "vip_port_id", "vip_address")),
    "loadbalancer.ready": (
        "loadbalancer",
        (
            "loadbalancer_id",
            "vip_port_id",
            "vip_address",
            "listener_ids",
            "pool_ids",
            "monitor_ids",
            "floating_ip_id",
            "floating_ip",
        ),
    ),
}
# A creation event arriving once deletion is under way: (awaiting key, delete task to re-send).
LATE_PART_EVENTS: dict[str, tuple[str, str]] = {
    "network.ready": ("network", "network.delete"),
    "security_groups.ready": ("security_groups", "security_groups.delete"),
    "loadbalancer.created": ("loadbalancer", "loadbalancer.delete"),
    "loadbalancer.ready": ("loadbalancer", "loadbalancer.delete"),
}


def _merge(old: Any, new: Any) -> Any:
    if isinstance(new, dict):
        merged = dict(old or {})
        merged.update({str(k): v for k, v in new.items() if v is not None})
        return merged
    return old if new is None else new


def record_cluster_ids(ctx: Ctx) -> None:
    """Store every ID of a part event (known values are never overwritten by None)."""
    if ctx.trigger == "pki.ready":
        ctx.agg.ids["pki_ready"] = True
        return
    if ctx.trigger not in _PART_FIELDS:
        return
    part, fields = _PART_FIELDS[ctx.trigger]
    known = ctx.agg.ids[part]
    for name in fields:
        if name in ctx.data:
            known[name] = _merge(known.get(name), ctx.data[name])
    if part == "loadbalancer" and ctx.trigger == "loadbalancer.ready":
        host = known.get("floating_ip") or known.get("vip_address")
        ctx.agg.ids["endpoint"] = {"host": host, "port": API_PORT}


def record_machine_ids(m: MachineAggregate, data: Json) -> bool:
    """Store the server, port, address, floating IP and member IDs; True if any was new."""
    pairs = {
        "server_id": data.get("server_id"),
        "member_id": data.get("member_id"),
        "floating_ip_id": data.get("floating_ip_id"),
    }
    if "floating_ip_id" in data:
        pairs["floating_ip"] = data.get("address")
    elif "address" in data:
        pairs["address"] = data.get("address")
    learned = False
    for name, value in pairs.items():
        if value is not None and getattr(m, name) != value:
            setattr(m, name, value)
            learned = True
    ports = [p for p in data.get("port_ids") or [] if p not in m.port_ids]
    if ports:
        m.port_ids.extend(ports)
        learned = True
    return learned
