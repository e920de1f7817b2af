"""server.create / server.poll / server.delete: one Nova server per machine, with its own port.

create, like CAPO's two-phase create: find the server (recorded ID, else exact name + our tag)
-> resolve image (Glance, by name; 0 or >1 is terminal) and flavor -> server group (control
plane, soft-anti-affinity, find-or-create) -> port ``<machine>-0`` (adopted if a crashed attempt
left it: CAPO #723/#1404) -> boot with the port, user data, tags and metadata. Everything is
resolved before anything is created, so a bad image or flavor leaves nothing behind.

poll: BUILD -> poll again later; ACTIVE -> the fixed IP on the cluster network; ERROR -> terminal
with Nova's fault message (CAPO #3375: never drop it); gone -> terminal.

delete: release the bastion's floating IP (if ours) -> delete the server (if ours) -> poll until
it is gone -> delete its port (ours) -> drop the control-plane server group once it is empty.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from openstack import exceptions as os_exceptions

from handlers import bastion
from handlers.base import (
    Deps,
    Event,
    Handler,
    Reply,
    TerminalError,
    TransientError,
    backoff_ms,
    cluster_tag,
    is_ours,
    owned_tags,
)
from handlers.bootstrap import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    INIT,
    NodeBootstrap,
    cloud_config,
)
from handlers.compute_parts import (
    GONE_STATES,
    ensure_port,
    find_server,
    flavor_id,
    image_id,
    machine_group_name,
    port_name,
    server_group_id,
    server_group_name,
)
from handlers.neutron_common import call, cluster_name, get_or_none, ignore_missing
from handlers.pki import ensure_kubeconfig, ensure_material

CONTROL_PLANE = "control_plane"
DEFAULT_KUBERNETES_VERSION = "v1.30.2"
MAX_USER_DATA = 65535  # Nova's limit on the base64 text


@dataclass(frozen=True)
class Built:
    server_id: str
    port_ids: list[str]


# ---- server.create ------------------------------------------------------------------------------
def _boot(conn: Any, task: dict[str, Any], image: str, flavor: str, port: Any, **extra: Any) -> Any:
    cid, role = task["cluster_id"], task["role"]
    try:
        return conn.compute.create_server(
            name=task["machine_id"],
            image_id=image,
            flavor_id=flavor,
            networks=[{"port": port.id}],
            tags=owned_tags(cid),
            metadata={"clusterbus-cluster": cid, "clusterbus-role": role},
            **extra,
        )
    except os_exceptions.NotFoundException as exc:
        # The empty server group was dropped by a concurrent server.delete: resolve it again.
        if "group" in str(exc).lower():
            raise TransientError(f"server group vanished: {exc}") from exc
        raise


def _replace_failed(conn: Any, server: Any) -> NoReturn:
    """Asked again for a machine whose server is in ERROR (cluster.retry): delete it and come
    back once it is gone; its port is unbound by Nova and adopted by the next attempt."""
    if server.task_state != "deleting":
        conn.compute.delete_server(server, ignore_missing=True)
    raise TransientError(f"replacing server {server.id} in ERROR: {_fault_message(server)}")


def create_server_sync(conn: Any, task: dict[str, Any], user_data: str | None) -> Built:
    cid, mid = task["cluster_id"], task["machine_id"]
    existing = find_server(conn, cid, mid, task.get("known_server_id"))
    if existing is not None:
        if existing.status == "ERROR":
            _replace_failed(conn, existing)
        ports = conn.network.ports(device_id=existing.id)
        return Built(existing.id, [p.id for p in ports])
    image, flavor = image_id(conn, task["image"]), flavor_id(conn, task["flavor"])
    group_name = task.get("server_group_name") or (
        server_group_name(cid) if task["role"] == CONTROL_PLANE else None
    )
    extra: dict[str, Any] = {}
    if group_name:
        extra["scheduler_hints"] = {"group": server_group_id(conn, group_name)}
    if task.get("ssh_key_name"):
        extra["key_name"] = task["ssh_key_name"]
    if user_data is not None:
        extra["user_data"] = user_data
    port = ensure_port(conn, task)
    if port.device_id:  # bound: a server we did not list yet (Nova binds while it builds)
        bound = get_or_none(conn.compute.get_server, port.device_id)
        if bound is not None and is_ours(bound, cid) and bound.name == mid:
            return Built(bound.id, [port.id])
        raise TransientError(f"port {port.id} ({port.name}) is in use by {port.device_id}")
    server = _boot(conn, task, image, flavor, port, **extra)
    return Built(server.id, [port.id])


async def _user_data(task: dict[str, Any], deps: Deps) -> str | None:
    """Base64 cloud-config for kubeadm nodes; None for the bastion (and bootstrap none)."""
    kind = task.get("bootstrap") or "none"
    if task["role"] == bastion.BASTION_ROLE or kind == "none":
        bastion.check_no_bootstrap(task["role"], kind)
        return None
    cid, endpoint = task["cluster_id"], task.get("endpoint_host")
    if not endpoint:
        raise TerminalError(f"server.create with bootstrap {kind} needs endpoint_host")
    material = await ensure_material(deps.secrets, cid)
    if kind == INIT:
        await ensure_kubeconfig(deps.secrets, cid, material, endpoint)
    node = NodeBootstrap(
        kind=kind,
        cluster=cid,
        node_name=task["machine_id"],
        endpoint_host=endpoint,
        kubernetes_version=task.get("kubernetes_version") or DEFAULT_KUBERNETES_VERSION,
        pod_cidr=task.get("pod_cidr") or DEFAULT_POD_CIDR,
        service_cidr=task.get("service_cidr") or DEFAULT_SERVICE_CIDR,
    )
    encoded = base64.b64encode(cloud_config(node, material).encode()).decode()
    if len(encoded) > MAX_USER_DATA:
        raise TerminalError(f"user data is {len(encoded)} bytes, Nova allows {MAX_USER_DATA}")
    return encoded


def _echoes(message: str, user_data: str | None) -> bool:
    """Nova's validation errors quote the rejected value ("Value: ..."): it holds CA keys."""
    return user_data is not None and user_data[:48] in message


async def handle_server_create(task: dict[str, Any], deps: Deps) -> Reply:
    user_data = await _user_data(task, deps)
    try:
        built = await call(deps, task, create_server_sync, task, user_data)
    except (TerminalError, TransientError) as exc:
        if _echoes(str(exc), user_data):
            withheld = "Nova rejected the server request (its message quoted the user data)"
            raise type(exc)(withheld) from None  # no cause: the cause holds the secret too
        raise
    data = {
        "cluster_id": task["cluster_id"],
        "machine_id": task["machine_id"],
        "server_id": built.server_id,
        "port_ids": built.port_ids,
    }
    return Reply.done(Event("server.building", data))


# ---- server.poll --------------------------------------------------------------------------------
def _fault_message(server: Any) -> str:
    fault = getattr(server, "fault", None) or {}
    message = fault.get("message") if isinstance(fault, dict) else None
    return str(message or f"server {server.id} went to ERROR without a fault message")


def _fixed_address(server: Any, network_name: str) -> str | None:
    """The fixed IPv4 address on the cluster network (any fixed IPv4 if that one is not named)."""
    addresses: dict[str, list[dict[str, Any]]] = server.addresses or {}
    ordered = [addresses.get(network_name, [])] + [
        entries for name, entries in addresses.items() if name != network_name
    ]
    for entries in ordered:
        for entry in entries:
            if entry.get("OS-EXT-IPS:type", "fixed") == "fixed" and entry.get("version") == 4:
                return str(entry["addr"])
    return None


def poll_server_sync(conn: Any, task: dict[str, Any]) -> str | None:
    """The server's address once ACTIVE; None while it is still building."""
    try:
        server = conn.compute.get_server(task["server_id"])
    except os_exceptions.NotFoundException as exc:
        raise TerminalError(f"server {task['server_id']} was unexpectedly deleted") from exc
    if server.status == "ERROR":
        raise TerminalError(_fault_message(server))
    if server.status in GONE_STATES:
        raise TerminalError(f"server {server.id} was unexpectedly deleted ({server.status})")
    if server.status != "ACTIVE":
        return None  # BUILD, or a state an operator may fix (SHUTOFF ...): look again later
    return _fixed_address(server, cluster_name(task["cluster_id"]))


async def handle_server_poll(task: dict[str, Any], deps: Deps) -> Reply:
    address = await call(deps, task, poll_server_sync, task)
    if address is None:
        attempt = int(task.get("attempt", 0))
        return Reply.later(task, backoff_ms(attempt, base_ms=2000, cap_ms=20_000))
    data = {
        "cluster_id": task["cluster_id"],
        "machine_id": task["machine_id"],
        "server_id": task["server_id"],
        "address": address,
    }
    return Reply.done(Event("server.active", data))


# ---- server.delete ------------------------------------------------------------------------------
def _release_floating_ip(conn: Any, cid: str, fip_id: str) -> None:
    fip = get_or_none(conn.network.get_ip, fip_id)
    if fip is not None and is_ours(fip, cid):
        ignore_missing(lambda: conn.network.delete_ip(fip, ignore_missing=False))


def _server_to_delete(conn: Any, cid: str, mid: str, server_id: str | None) -> Any | None:
    """Our server (also while deleting). A recorded ID is trusted: 404 means gone."""
    if server_id:
        found = get_or_none(conn.compute.get_server, server_id)
        return found if found is not None and is_ours(found, cid) else None
    listed = conn.compute.servers(name=f"^{re.escape(mid)}$", tags=cluster_tag(cid))
    return next((s for s in listed if s.name == mid and is_ours(s, cid)), None)


def _delete_ports(conn: Any, cid: str, mid: str) -> None:
    for port in conn.network.ports(name=port_name(mid), tags=cluster_tag(cid)):
        if is_ours(port, cid):
            ignore_missing(lambda port=port: conn.network.delete_port(port, ignore_missing=False))


def _drop_empty_group(conn: Any, cid: str, mid: str) -> None:
    """The machine's group (control plane or pool), once its last member is gone.

    Nova groups carry no tags: the names the engine gives (``<cluster>-<pool>``) or the
    handler's control-plane default are the only ones we may delete.
    """
    names = {server_group_name(cid), machine_group_name(mid)}
    for group in conn.compute.server_groups():
        if group.name in names and not group.member_ids:
            ignore_missing(
                lambda g=group: conn.compute.delete_server_group(g, ignore_missing=False)
            )


def delete_server_sync(conn: Any, task: dict[str, Any]) -> str | None:
    """None when the machine's server and port are gone, else the ID of the server still there."""
    cid, mid = task["cluster_id"], task["machine_id"]
    if task.get("floating_ip_id"):
        _release_floating_ip(conn, cid, task["floating_ip_id"])
    server = _server_to_delete(conn, cid, mid, task.get("server_id"))
    if server is not None:
        if server.status not in GONE_STATES and server.task_state != "deleting":
            conn.compute.delete_server(server, ignore_missing=True)
        return str(server.id)
    _delete_ports(conn, cid, mid)
    if not bastion.is_bastion(cid, mid):
        _drop_empty_group(conn, cid, mid)
    return None


async def handle_server_delete(task: dict[str, Any], deps: Deps) -> Reply:
    remaining = await call(deps, task, delete_server_sync, task)
    if remaining is not None:
        delay = backoff_ms(int(task.get("attempt", 0)), base_ms=1000, cap_ms=10_000)
        # The floating IP is released: do not look it up again on every poll.
        return Reply.later(task, delay, server_id=remaining, floating_ip_id=None)
    data = {"cluster_id": task["cluster_id"], "machine_id": task["machine_id"]}
    return Reply.done(Event("server.deleted", data))


HANDLERS: dict[str, Handler] = {
    "server.create": handle_server_create,
    "server.poll": handle_server_poll,
    "server.delete": handle_server_delete,
}
