"""Where a server lands: a host honouring its group's policy, and the fault its boot may end in."""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

from simulator.app import RNG_KEY
from simulator.core import Cloud, Record
from simulator.http import cloud_of
from simulator.nova_flavors import HOSTS


def pick_host(cloud: Cloud, group: Record | None) -> str | None:
    """A host honouring the group policy; None when a hard policy cannot be met."""
    default = HOSTS[cloud.serial() % len(HOSTS)]
    if group is None:
        return default
    servers = cloud.table("servers")
    used = [servers[m]["_host"] for m in group["members"] if m in servers]
    if group["policy"].endswith("anti-affinity"):
        free = [h for h in HOSTS if h not in used]
        if free:
            return free[0]
        return None if group["policy"] == "anti-affinity" else default
    return used[0] if used else default


def host_id(project_id: str, host: str) -> str:
    return hashlib.sha224(f"{project_id}{host}".encode()).hexdigest()


def boot_fault(request: web.Request, name: str, host: str | None) -> tuple[int, str] | None:
    """(code, message) of the fault this boot will end in, or None for a healthy boot."""
    if host is None:
        return 500, "No valid host was found. There are not enough hosts available."
    rng = request.app[RNG_KEY]
    for fault in cloud_of(request).profile.faults.server_errors:
        if re.search(fault.name_regex, name) and rng.random() < fault.rate:
            return fault.code, fault.message
    return None
