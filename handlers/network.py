"""network.ensure / network.delete: the cluster's network, subnet and router (+ floatingip.ensure).

ensure: external network (must be router:external) -> network -> subnet (node CIDR, DNS) ->
router with the external gateway -> router interface on the subnet (skipped if one exists).
Everything is created with our tags in the create body and found again by recorded ID, else by
name + tag, so a second run creates nothing. Calls are grouped into one thread hop per task.

delete (after the machines and the load balancer): release leftover floating IPs with our tag,
remove the router's interfaces and delete the router (if ours), delete dangling ports on the
network (ours, or named like our machines: CAPO #723/#1404), then the network (subnets go with
it). Neutron's 409 NetworkInUse (e.g. an Octavia VIP port not yet released) -> TransientError.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from handlers.floatingip import handle_floatingip_ensure
from handlers.neutron_common import (
    ROUTER_INTERFACE_OWNERS,
    call,
    cluster_name,
    description,
    external_network,
    find_owned,
    get_or_none,
    ignore_missing,
)


@dataclass(frozen=True)
class EnsuredNetwork:
    network_id: str
    subnet_id: str
    router_id: str


# ---- ensure ---------------------------------------------------------------------------------
def _ensure_network(conn: Any, task: dict[str, Any]) -> tuple[Any, bool]:
    """(network, created?)"""
    cid, known = task["cluster_id"], task.get("known") or {}
    found = find_owned(
        conn.network.networks, cid, known.get("network_id"), conn.network.get_network,
        name=cluster_name(cid),
    )  # fmt: skip
    if found is not None:
        return found, False
    created = conn.network.create_network(
        name=cluster_name(cid), description=description(cid), tags=owned_tags(cid)
    )
    return created, True


def _ensure_subnet(conn: Any, task: dict[str, Any], network: Any, fresh: bool) -> tuple[Any, bool]:
    """The subnet with the node CIDR on ``network`` (by ID, else by network + CIDR like CAPO)."""
    cid, known = task["cluster_id"], task.get("known") or {}
    if not fresh:
        found = get_or_none(conn.network.get_subnet, known.get("subnet_id"))
        if found is not None and found.network_id == network.id:
            return found, False
        for subnet in conn.network.subnets(network_id=network.id, cidr=task["node_cidr"]):
            return subnet, False
    created = conn.network.create_subnet(
        name=cluster_name(cid),
        description=description(cid),
        network_id=network.id,
        ip_version=4,
        cidr=task["node_cidr"],
        dns_nameservers=[str(ip) for ip in task.get("dns_nameservers") or []],
        tags=owned_tags(cid),
    )
    return created, True


def _ensure_router(conn: Any, task: dict[str, Any], external_id: str) -> tuple[Any, bool]:
    cid, known = task["cluster_id"], task.get("known") or {}
    gateway = {"network_id": external_id}
    found = find_owned(
        conn.network.routers, cid, known.get("router_id"), conn.network.get_router,
        name=cluster_name(cid),
    )  # fmt: skip
    if found is None:
        created = conn.network.create_router(
            name=cluster_name(cid),
            description=description(cid),
            external_gateway_info=gateway,
            tags=owned_tags(cid),
        )
        return created, True
    if (found.external_gateway_info or {}).get("network_id") != external_id:
        found = conn.network.update_router(found, external_gateway_info=gateway)
    return found, False


def _has_interface(conn: Any, router_id: str, subnet_id: str) -> bool:
    for port in conn.network.ports(device_id=router_id):
        on_subnet = any(ip.get("subnet_id") == subnet_id for ip in port.fixed_ips or [])
        if on_subnet and port.device_owner in ROUTER_INTERFACE_OWNERS:
            return True
    return False


def ensure_network_sync(conn: Any, task: dict[str, Any]) -> EnsuredNetwork:
    external = external_network(conn, task["external_network"])
    network, fresh_network = _ensure_network(conn, task)
    subnet, fresh_subnet = _ensure_subnet(conn, task, network, fresh_network)
    router, fresh_router = _ensure_router(conn, task, external.id)
    # A new router or subnet cannot have the interface yet: skip the lookup.
    if fresh_router or fresh_subnet or not _has_interface(conn, router.id, subnet.id):
        conn.network.add_interface_to_router(router, subnet=subnet.id)
    return EnsuredNetwork(network.id, subnet.id, router.id)


async def handle_network_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    ids = await call(deps, task, ensure_network_sync, task)
    return Reply.done(
        Event(
            "network.ready",
            {
                "cluster_id": task["cluster_id"],
                "network_id": ids.network_id,
                "subnet_id": ids.subnet_id,
                "router_id": ids.router_id,
            },
        )
    )


# ---- delete ---------------------------------------------------------------------------------
def _release_floating_ips(conn: Any, cid: str) -> None:
    """Floating IPs left with our tag (e.g. a bastion's whose server.delete never ran)."""
    for fip in conn.network.ips(tags=cluster_tag(cid)):
        if is_ours(fip, cid):
            conn.network.delete_ip(fip, ignore_missing=True)


def _delete_router(conn: Any, router: Any, ports: list[Any]) -> None:
    """Detach every interface of our router, then delete it (404 = gone)."""
    for port in ports:
        if port.device_id == router.id and port.device_owner in ROUTER_INTERFACE_OWNERS:
            ignore_missing(conn.network.remove_interface_from_router, router, port=port.id)
    conn.network.delete_router(router, ignore_missing=True)


def _is_dangling(port: Any, cid: str) -> bool:
    """A port we may delete: ours, or named like one of our machines' (``<cluster>-...``)."""
    if port.device_owner == "network:dhcp" or port.device_owner in ROUTER_INTERFACE_OWNERS:
        return False
    return is_ours(port, cid) or (port.name or "").startswith(f"{cid}-")


def delete_network_sync(conn: Any, task: dict[str, Any]) -> None:
    cid, known = task["cluster_id"], task.get("known") or {}
    name = cluster_name(cid)
    network = find_owned(
        conn.network.networks, cid, known.get("network_id"), conn.network.get_network, name=name
    )
    router = find_owned(
        conn.network.routers, cid, known.get("router_id"), conn.network.get_router, name=name
    )
    _release_floating_ips(conn, cid)
    ports = list(conn.network.ports(network_id=network.id)) if network is not None else []
    if router is not None:
        if network is None:
            ports = list(conn.network.ports(device_id=router.id))
        _delete_router(conn, router, ports)
    if network is None:
        return
    for port in ports:
        if _is_dangling(port, cid):
            conn.network.delete_port(port, ignore_missing=True)
    try:
        conn.network.delete_network(network, ignore_missing=True)
    except os_exceptions.ConflictException as exc:
        raise TransientError(openstack_message(exc)) from exc


async def handle_network_delete(task: dict[str, Any], deps: Deps) -> Reply:
    await call(deps, task, delete_network_sync, task)
    return Reply.done(Event("network.deleted", {"cluster_id": task["cluster_id"]}))


HANDLERS: dict[str, Handler] = {
    "network.ensure": handle_network_ensure,
    "network.delete": handle_network_delete,
    "floatingip.ensure": handle_floatingip_ensure,
}
