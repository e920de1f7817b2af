"""floatingip.ensure: the bastion's floating IP, never allocated twice (CAPO #1114/#1632/#1827).

Order, like CAPO's bastion: a FIP already on the server's port is recorded as is; else reuse the
recorded ID, else ours found by tag + the machine's description, else allocate one. A new FIP is
allocated *with* ``port_id`` in the create body: Neutron allocates and associates in one
transaction, so a failed association leaves no address behind. A reused one is associated with
an update; if that fails it stays findable by tag + description for the next attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.base import Deps, Event, Reply, TransientError, cluster_tag, is_ours, owned_tags
from handlers.neutron_common import call, external_network, get_or_none


@dataclass(frozen=True)
class FloatingIp:
    id: str
    address: str


def fip_description(cluster_id: str, machine_id: str) -> str:
    """Names the machine: a re-run finds the FIP it allocated for that machine."""
    return f"Created by clusterbus for cluster {cluster_id} machine {machine_id}"


def _server_port(conn: Any, task: dict[str, Any]) -> Any:
    """The server's port: ``<machine>-0`` if there, else its first port with an IPv4 address."""
    ports = list(conn.network.ports(device_id=task["server_id"]))
    for port in ports:
        if port.name == f"{task['machine_id']}-0":
            return port
    for port in ports:
        if any(":" not in ip.get("ip_address", ":") for ip in port.fixed_ips or []):
            return port
    raise TransientError(f"server {task['server_id']} has no port with an IPv4 address yet")


def _bound_to_server(fip: Any, server_id: str) -> bool:
    details = getattr(fip, "port_details", None) or {}
    return bool(fip.port_id) and details.get("device_id") == server_id


def _reusable(conn: Any, task: dict[str, Any], port_id: str, known: Any | None) -> Any | None:
    """Ours for this machine and free (or already on this port): recorded ID first, then tag."""
    cid = task["cluster_id"]
    candidates = [known] if known is not None and is_ours(known, cid) else []
    if not candidates:
        wanted = fip_description(cid, task["machine_id"])
        candidates = list(conn.network.ips(tags=cluster_tag(cid), description=wanted))
    for fip in candidates:
        if fip.port_id in (None, "", port_id):
            return fip
    return None


def ensure_floating_ip_sync(conn: Any, task: dict[str, Any]) -> FloatingIp:
    cid, server_id = task["cluster_id"], task["server_id"]
    # Fast path for a re-run: the recorded FIP already sits on this server.
    known = get_or_none(conn.network.get_ip, task.get("known_floating_ip_id"))
    if known is not None and _bound_to_server(known, server_id):
        return FloatingIp(known.id, known.floating_ip_address)
    port = _server_port(conn, task)
    for fip in conn.network.ips(port_id=port.id):
        return FloatingIp(fip.id, fip.floating_ip_address)  # CAPO: already attached -> record
    fip = _reusable(conn, task, port.id, known)
    if fip is not None:
        if fip.port_id != port.id:
            fip = conn.network.update_ip(fip, port_id=port.id)
        return FloatingIp(fip.id, fip.floating_ip_address)
    external = external_network(conn, task["external_network"])
    created = conn.network.create_ip(
        floating_network_id=external.id,
        port_id=port.id,
        description=fip_description(cid, task["machine_id"]),
        tags=owned_tags(cid),
    )
    return FloatingIp(created.id, created.floating_ip_address)


async def handle_floatingip_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    fip = await call(deps, task, ensure_floating_ip_sync, task)
    return Reply.done(
        Event(
            "floatingip.ready",
            {
                "cluster_id": task["cluster_id"],
                "machine_id": task["machine_id"],
                "floating_ip_id": fip.id,
                "address": fip.address,
            },
        )
    )
