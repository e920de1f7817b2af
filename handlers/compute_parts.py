"""Finding (or creating) the parts a machine's server needs: image, flavor, group, port, server.

Synchronous: these run inside ``deps.clouds.run`` with the cloud's openstacksdk Connection.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

from handlers.base import TerminalError, cluster_tag, is_ours, owned_tags
from handlers.neutron_common import description, get_or_none, ignore_missing

SERVER_GROUP_POLICY = "soft-anti-affinity"
GONE_STATES = ("DELETED", "SOFT_DELETED")
# Worker machines are created in parallel and Nova group names are not unique: threads of one
# process take turns rather than each creating a group that find_or_create_group then deletes.
_GROUP_LOCK = threading.Lock()


def server_group_name(cluster_id: str) -> str:
    return f"clusterbus-{cluster_id}-control-plane"


def port_name(machine_id: str) -> str:
    return f"{machine_id}-0"


def find_server(conn: Any, cid: str, mid: str, known_id: str | None) -> Any | None:
    """Our live server for the machine: by recorded ID, else by exact name + our tag."""
    found = get_or_none(conn.compute.get_server, known_id)
    if found is not None and is_ours(found, cid) and found.status not in GONE_STATES:
        return found
    listed = conn.compute.servers(name=f"^{re.escape(mid)}$", tags=cluster_tag(cid))
    matches = [s for s in listed if s.name == mid and is_ours(s, cid)]
    live = [s for s in matches if s.status not in GONE_STATES]
    return live[0] if live else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def image_id(conn: Any, ref: str) -> str:
    """The one image named ``ref`` (or with that ID); TerminalError for none or several."""
    matches = list(conn.image.images(name=ref))
    if not matches and _is_uuid(ref):
        found = get_or_none(conn.image.get_image, ref)
        matches = [found] if found is not None else []
    if not matches:
        raise TerminalError(f"image {ref!r} not found")
    if len(matches) > 1:
        raise TerminalError(f"found {len(matches)} images named {ref!r}; give the image ID")
    return str(matches[0].id)


def flavor_id(conn: Any, ref: str) -> str:
    """The flavor with ID or exact name ``ref``: one list call (find_flavor makes two)."""
    flavors = list(conn.compute.flavors(details=False))
    for flavor in flavors:
        if flavor.id == ref:
            return str(flavor.id)
    named = [f for f in flavors if f.name == ref]
    if not named:
        raise TerminalError(f"flavor {ref!r} not found")
    if len(named) > 1:
        raise TerminalError(f"found {len(named)} flavors named {ref!r}; give the flavor ID")
    return str(named[0].id)


def server_group_id(conn: Any, name: str) -> str:
    """Our server group (Nova groups have no tags: the name is ours), created if missing.

    The lock only saves threads of this process a wasted create; replicas in other processes
    converge in ``find_or_create_group``.
    """
    with _GROUP_LOCK:
        return find_or_create_group(conn, name)


def _oldest_group(conn: Any, name: str) -> Any | None:
    """The first group called ``name`` in Nova's listing, which is in creation order."""
    return next((g for g in conn.compute.server_groups() if g.name == name), None)


def find_or_create_group(conn: Any, name: str) -> str:
    """The oldest group called ``name``, creating one if there is none.

    Names are not unique in Nova, so replicas that all missed it each create one. Each then
    lists again and uses the oldest: every replica agrees on it, since a group created later
    cannot list before it. A group we created that lost this race is still empty (nothing has
    booted into it): we delete it, so the pool does not end up split across two groups.
    """
    found = _oldest_group(conn, name)
    if found is not None:
        return str(found.id)
    created = conn.compute.create_server_group(name=name, policy=SERVER_GROUP_POLICY)
    oldest = _oldest_group(conn, name)
    if oldest is None or oldest.id == created.id:
        return str(created.id)
    ignore_missing(conn.compute.delete_server_group, created, ignore_missing=False)
    return str(oldest.id)


def machine_group_name(machine_id: str) -> str:
    """The group a machine's server joins: ``<cluster>-<pool>`` from ``<cluster>-<pool>-<n>``."""
    return machine_id.rsplit("-", 1)[0]


def ensure_port(conn: Any, task: dict[str, Any]) -> Any:
    """Port ``<machine>-0`` on the cluster network with the role's groups; adopt ours if there."""
    cid, name = task["cluster_id"], port_name(task["machine_id"])
    groups = sorted(task.get("security_group_ids") or [])
    for port in conn.network.ports(name=name, network_id=task["network_id"]):
        if not is_ours(port, cid):
            continue
        if sorted(port.security_group_ids or []) != groups:
            port = conn.network.update_port(port, security_group_ids=groups)
        return port
    return conn.network.create_port(
        name=name,
        network_id=task["network_id"],
        fixed_ips=[{"subnet_id": task["subnet_id"]}],
        security_group_ids=groups,
        description=description(cid),
        tags=owned_tags(cid),
    )
