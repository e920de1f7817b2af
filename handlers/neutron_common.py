"""Neutron helpers shared by the network, floating IP and security group handlers.

Everything here except ``call`` is synchronous: it runs inside ``deps.clouds.run`` with the
cloud's openstacksdk Connection, so several SDK calls share one thread hop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from openstack import exceptions as os_exceptions

from handlers.base import Deps, TerminalError, TransientError, cluster_tag, is_ours
from handlers.errors import classify

T = TypeVar("T")

ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)


async def call(deps: Deps, task: dict[str, Any], fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(conn, *args)`` for the task's cloud; any failure becomes Transient/TerminalError."""
    try:
        return await deps.clouds.run(task["cloud"], fn, *args)
    except (TransientError, TerminalError):
        raise
    except Exception as exc:
        raise classify(exc) from exc


def description(cluster_id: str) -> str:
    return f"Created by clusterbus for cluster {cluster_id}"


def cluster_name(cluster_id: str) -> str:
    """Name of the cluster's network, subnet and router."""
    return f"clusterbus-{cluster_id}"


def get_or_none(getter: Callable[[str], T], resource_id: str | None) -> T | None:
    """``getter(resource_id)``, or None when there is no ID or the resource is gone (404)."""
    if not resource_id:
        return None
    try:
        return getter(resource_id)
    except os_exceptions.NotFoundException:
        return None


def ignore_missing(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``action(*args, **kwargs)`` for a delete-like call; a 404 means the work is done."""
    with contextlib.suppress(os_exceptions.NotFoundException):
        action(*args, **kwargs)


def find_owned(
    listing: Callable[..., Iterable[T]],
    cluster_id: str,
    known_id: str | None,
    getter: Callable[[str], T],
    **filters: Any,
) -> T | None:
    """A resource of ours: by recorded ID (if still there and ours), else by filters + our tag."""
    found = get_or_none(getter, known_id)
    if found is not None and is_ours(found, cluster_id):
        return found
    matches = [
        r for r in listing(tags=cluster_tag(cluster_id), **filters) if is_ours(r, cluster_id)
    ]
    return matches[0] if matches else None


def external_network(conn: Any, name_or_id: str) -> Any:
    """The external network by name or ID; TerminalError when missing or not ``router:external``."""
    externals = list(conn.network.networks(is_router_external=True))
    for network in externals:
        if name_or_id in (network.id, network.name):
            return network
    # One more call, only on the failure path, to say *why* it is not usable.
    other = conn.network.find_network(name_or_id, ignore_missing=True)
    if other is not None:
        raise TerminalError(
            f"network {name_or_id!r} is not an external network (router:external is false)"
        )
    names = ", ".join(sorted(n.name for n in externals)) or "none"
    raise TerminalError(
        f"external network {name_or_id!r} not found (external networks visible: {names})"
    )
