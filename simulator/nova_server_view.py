"""How a server looks to a client: addresses and security groups from Neutron, by microversion.

Addresses and security groups are computed on every read from Neutron's port and floating IP
records, so they always agree with what the network API shows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator import neutron
from simulator.core import ApiError, Cloud, Record
from simulator.nova_common import at_least, bad_request, is_admin, links, origin

# Fields shown only to the admin (Nova's extended server attributes policy), by microversion.
_ADMIN_FIELDS = (
    "OS-EXT-SRV-ATTR:host",
    "OS-EXT-SRV-ATTR:hypervisor_hostname",
    "OS-EXT-SRV-ATTR:instance_name",
)
_ADMIN_FIELDS_2_3 = (
    "OS-EXT-SRV-ATTR:reservation_id",
    "OS-EXT-SRV-ATTR:launch_index",
    "OS-EXT-SRV-ATTR:hostname",
    "OS-EXT-SRV-ATTR:kernel_id",
    "OS-EXT-SRV-ATTR:ramdisk_id",
    "OS-EXT-SRV-ATTR:root_device_name",
)
# Fields that appear from a microversion on: name -> minor version.
_SINCE = {
    "locked": 9,
    "description": 19,
    "tags": 26,
    "trusted_image_certificates": 63,
    "server_groups": 71,
    "locked_reason": 73,
}


def server_ports(cloud: Cloud, server_id: str) -> list[Record]:
    return sorted(neutron.ports_of_device(cloud, server_id), key=lambda p: p.get("created_at", ""))


@dataclass
class Wiring:
    """Neutron's records as servers see them, indexed once per request (lists stay linear)."""

    cloud: Cloud
    ports: dict[str, list[Record]]  # device_id -> ports, oldest first
    floating: dict[str, list[Record]]  # port_id -> floating IPs bound to it

    @classmethod
    def of(cls, cloud: Cloud) -> Wiring:
        ports: dict[str, list[Record]] = defaultdict(list)
        for port in sorted(cloud.table("ports").values(), key=lambda p: p.get("created_at", "")):
            if port.get("device_id"):
                ports[str(port["device_id"])].append(port)
        floating: dict[str, list[Record]] = defaultdict(list)
        for fip in cloud.table("floatingips").values():
            if fip.get("port_id") and fip.get("floating_ip_address"):
                floating[str(fip["port_id"])].append(fip)
        return cls(cloud, ports, floating)


def _address(addr: str, kind: str, mac: str) -> Record:
    version = 6 if ":" in addr else 4
    return {
        "addr": addr,
        "version": version,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }


def addresses(wiring: Wiring, server: Record) -> dict[str, list[Record]]:
    """Nova's ``addresses``: fixed then floating IPs of each port, grouped by network name."""
    result: dict[str, list[Record]] = {}
    networks = wiring.cloud.table("networks")
    for port in wiring.ports.get(server["id"], []):
        network = networks.get(port["network_id"], {})
        entries = result.setdefault(str(network.get("name") or port["network_id"]), [])
        mac = str(port.get("mac_address", ""))
        entries += [_address(f["ip_address"], "fixed", mac) for f in port.get("fixed_ips", [])]
        floating = wiring.floating.get(port["id"], [])
        entries += [_address(f["floating_ip_address"], "floating", mac) for f in floating]
    return result


def security_groups(wiring: Wiring, server: Record) -> list[Record]:
    """Names of the groups on the server's ports (the requested ones while it has none)."""
    groups = wiring.cloud.table("security_groups")
    names: list[str] = []
    ports = wiring.ports.get(server["id"], [])
    for port in ports:
        for group_id in port.get("security_groups", []):
            name = str(groups.get(group_id, {}).get("name", group_id))
            if name not in names:
                names.append(name)
    if not ports:
        names = list(server.get("_security_group_names", []))
    return [{"name": name} for name in names]


def _image(request: web.Request, server: Record) -> Any:
    image_id = server["_image_id"]
    return {
        "id": image_id,
        "links": [{"rel": "bookmark", "href": f"{origin(request)}/compute/images/{image_id}"}],
    }


def _flavor(request: web.Request, server: Record) -> Record:
    if at_least(request, 47):
        return dict(server["flavor"])
    flavor_id = server["_flavor_id"]
    href = f"{origin(request)}/compute/flavors/{flavor_id}"
    return {"id": flavor_id, "links": [{"rel": "bookmark", "href": href}]}


def render(request: web.Request, wiring: Wiring, server: Record) -> Record:
    """The detailed server view at the request's microversion and role."""
    body = {k: v for k, v in server.items() if not k.startswith("_")}
    for field, minor in _SINCE.items():
        if not at_least(request, minor):
            body.pop(field, None)
    hidden = [] if is_admin(request) else list(_ADMIN_FIELDS)
    if not (is_admin(request) and at_least(request, 3)):
        hidden += _ADMIN_FIELDS_2_3
    for field in hidden:
        body.pop(field, None)
    if is_admin(request) and at_least(request, 3):
        body["OS-EXT-SRV-ATTR:user_data"] = server.get("_user_data")
    if at_least(request, 71):
        body["server_groups"] = [server["_group_id"]] if server.get("_group_id") else []
    body.update(
        addresses=addresses(wiring, server),
        security_groups=security_groups(wiring, server),
        image=_image(request, server),
        flavor=_flavor(request, server),
        links=links(request, "servers", server["id"]),
    )
    return body


def render_brief(request: web.Request, server: Record) -> Record:
    return {
        "id": server["id"],
        "name": server["name"],
        "links": links(request, "servers", server["id"]),
    }


# ---- list filters -----------------------------------------------------------------------------
def _regex(pattern: str, field: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise bad_request(f"Invalid regular expression for filter {field}: {exc}") from exc


def _tags_match(tags: set[str], query: Any) -> bool:
    def wanted(key: str) -> set[str]:
        return {t for v in query.getall(key, []) for t in v.split(",") if t}

    return all(
        [
            wanted("tags") <= tags,
            not query.get("tags-any") or bool(wanted("tags-any") & tags),
            not query.get("not-tags") or not wanted("not-tags") <= tags,
            not (wanted("not-tags-any") & tags),
        ]
    )


def matcher(request: web.Request, wiring: Wiring) -> Any:
    """A predicate for Nova's server list filters (unknown filters are ignored, like Nova)."""
    query = request.query
    name = _regex(query["name"], "name") if "name" in query else None
    ip = _regex(query["ip"], "ip") if "ip" in query else None
    status = query.get("status", "").upper()
    since = query.get("changes-since", "")

    def match(server: Record) -> bool:
        if name and not name.search(server["name"]):
            return False
        if status and server["status"] != status:
            return False
        if "image" in query and server["_image_id"] != query["image"]:
            return False
        if "flavor" in query and server["_flavor_id"] != query["flavor"]:
            return False
        if since and server["updated"] < since.replace("+00:00", "Z"):
            return False
        if ip and not any(
            ip.search(a["addr"]) for entries in addresses(wiring, server).values() for a in entries
        ):
            return False
        return _tags_match(set(server.get("tags", [])), query)

    return match


def page(request: web.Request, servers: list[Record]) -> tuple[list[Record], Record | None]:
    """(servers of this page, the ``next`` link or None), Nova's marker/limit paging."""
    marker = request.query.get("marker")
    if marker:
        ids = [s["id"] for s in servers]
        if marker not in ids:
            raise bad_request(f"marker [{marker}] not found")
        servers = servers[ids.index(marker) + 1 :]
    limit_text = request.query.get("limit", "")
    if not limit_text:
        return servers[:1000], None
    if not limit_text.isdigit():
        raise ApiError(400, f"Invalid input for query parameters limit. Value: {limit_text}.")
    limit = min(int(limit_text), 1000)
    chosen = servers[:limit]
    if not chosen or len(chosen) < limit:
        return chosen, None
    query = dict(request.query)
    query["marker"] = chosen[-1]["id"]
    return chosen, {"rel": "next", "href": str(request.url.with_query(query))}
