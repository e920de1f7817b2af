"""Neutron ports: the plain-Python model Nova, Octavia and the HTTP API (neutron_ports_api) use."""

from __future__ import annotations

import ipaddress
from typing import Any

from simulator.core import Cloud, Record
from simulator.neutron_base import (
    ROUTER_INTERFACE_OWNER,
    check_quota,
    find_visible,
    neutron_error,
    new_record,
    not_found,
    touch,
)
from simulator.neutron_ipam import allocate, bad_request, claim
from simulator.neutron_secgroups import resolve_security_group
from simulator.neutron_sgrules import ensure_default_group


def _network(cloud: Cloud, network_id: str, project_id: str | None) -> Record:
    network = find_visible(cloud, "networks", network_id, project_id)
    if network is None:
        raise not_found("Network", network_id)
    return network


def _subnet_for(cloud: Cloud, network: Record, item: Record) -> Record:
    """The subnet a ``fixed_ips`` entry refers to: by ``subnet_id`` or by its address."""
    subnets = cloud.list("subnets", None, lambda s: s["network_id"] == network["id"])
    if item.get("subnet_id"):
        for subnet in subnets:
            if subnet["id"] == item["subnet_id"]:
                return subnet
        raise bad_request(
            f"Invalid input for operation: Failed to create port on network {network['id']}, "
            f"because fixed_ips included invalid subnet {item['subnet_id']}."
        )
    for subnet in subnets:
        if ipaddress.ip_address(str(item.get("ip_address"))) in ipaddress.ip_network(
            subnet["cidr"]
        ):
            return subnet
    raise bad_request(
        f"IP address {item.get('ip_address')} is not a valid IP for the specified network."
    )


def _fixed_ips(
    cloud: Cloud, network: Record, wanted: list[Record] | None, owner: str
) -> list[Record]:
    """Allocate the port's addresses: the requested ones, or one from the first subnet."""
    if wanted is None:
        first = cloud.table("subnets").get(network["subnets"][0]) if network["subnets"] else None
        return [{"subnet_id": first["id"], "ip_address": allocate(cloud, first)}] if first else []
    result: list[Record] = []
    for item in wanted:
        subnet = _subnet_for(cloud, network, item)
        if item.get("ip_address"):
            address = claim(
                cloud, subnet, item["ip_address"], gateway_ok=owner == ROUTER_INTERFACE_OWNER
            )
        else:
            address = allocate(cloud, subnet)
        if any(r["ip_address"] == address for r in result):
            raise neutron_error(
                409,
                "IpAddressAlreadyAllocated",
                f"IP address {address} already allocated in subnet {subnet['id']}",
            )
        result.append({"subnet_id": subnet["id"], "ip_address": address})
    return result


def _security_groups(
    cloud: Cloud, project_id: str, ids: list[str] | None, secured: bool, owner: str
) -> list[str]:
    if owner.startswith("network:"):
        return []  # Neutron applies no security groups to router and DHCP ports
    if ids is None:
        return [ensure_default_group(cloud, project_id)["id"]] if secured else []
    if ids and not secured:
        raise neutron_error(
            400,
            "PortSecurityAndIPRequiredForSecurityGroups",
            "Port security must be enabled and port must have an IP address in order to use "
            "security groups.",
        )
    return [resolve_security_group(cloud, project_id, str(i))["id"] for i in ids]


def _mac(cloud: Cloud) -> str:
    n = cloud.serial()
    return f"fa:16:3e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def _refresh_binding(port: Record) -> None:
    """Status and binding follow the device: a bound compute port is ACTIVE on a host."""
    port["status"] = "ACTIVE" if port.get("device_id") else "DOWN"
    if not port.get("device_id"):
        port["binding:host_id"] = ""  # unplugged: no longer bound anywhere
    elif str(port.get("device_owner", "")).startswith("compute:"):
        port["binding:host_id"] = port.get("binding:host_id") or "sim-compute-1"
    port["binding:vif_type"] = "ovs" if port.get("binding:host_id") else "unbound"


def create_port(
    cloud: Cloud,
    project_id: str,
    *,
    network_id: str,
    name: str = "",
    device_id: str = "",
    device_owner: str = "",
    security_group_ids: list[str] | None = None,
    fixed_ips: list[Record] | None = None,
    description: str = "",
    tags: list[str] | None = None,
    extra: Record | None = None,
    count_quota: bool = True,
) -> Record:
    """Create a port on a network visible to ``project_id`` (404 if none), checking the quota.

    ``extra`` carries further API fields (``admin_state_up``, ``mac_address``,
    ``allowed_address_pairs``, ``port_security_enabled``, ``binding:*``). ``count_quota=False``
    is for ports Neutron itself owns (router gateways), which no project pays for.
    """
    extra = dict(extra or {})
    network = _network(cloud, network_id, project_id)
    if count_quota:
        check_quota(cloud, project_id, "port")
    secured = bool(extra.pop("port_security_enabled", network.get("port_security_enabled", True)))
    groups = _security_groups(cloud, project_id, security_group_ids, secured, device_owner)
    addresses = _fixed_ips(cloud, network, fixed_ips, device_owner)
    port = new_record(
        cloud,
        "ports",
        project_id,
        {
            "name": name,
            "network_id": network_id,
            "admin_state_up": True,
            "mac_address": _mac(cloud),
            "device_id": device_id,
            "device_owner": device_owner,
            "fixed_ips": addresses,
            "security_groups": groups,
            "port_security_enabled": secured,
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "binding:host_id": "",
            "binding:vnic_type": "normal",
            "binding:profile": {},
            "binding:vif_details": {},
            "ip_allocation": "immediate",
            "propagate_uplink_status": False,
        },
    )
    port.update(extra)
    port["description"] = description
    port["tags"] = list(tags or [])
    _refresh_binding(port)
    return port


def update_port(cloud: Cloud, port_id: str, changes: dict[str, Any]) -> Record:
    """Apply ``changes`` to a port (any project); addresses and groups are re-validated."""
    port = cloud.table("ports").get(port_id)
    if port is None:
        raise not_found("Port", port_id)
    changes = dict(changes)
    project_id = str(port["_project_id"] or "")
    secured = bool(changes.get("port_security_enabled", port["port_security_enabled"]))
    if "fixed_ips" in changes:
        network = _network(cloud, port["network_id"], None)
        old, port["fixed_ips"] = port["fixed_ips"], []  # its own addresses may be asked again
        try:
            changes["fixed_ips"] = _fixed_ips(
                cloud, network, list(changes["fixed_ips"] or []), port["device_owner"]
            )
        except Exception:
            port["fixed_ips"] = old
            raise
    if "security_groups" in changes or "port_security_enabled" in changes:
        ids = changes.get("security_groups", port["security_groups"])
        owner = str(changes.get("device_owner", port["device_owner"]))
        changes["security_groups"] = _security_groups(
            cloud, project_id, list(ids or []), secured, owner
        )
    port.update(changes)
    _refresh_binding(port)
    return touch(port)


def _unbind_floating_ips(cloud: Cloud, port_id: str) -> None:
    for fip in cloud.list("floatingips", None, lambda f: f.get("port_id") == port_id):
        cloud.cancel_pending(fip)
        fip.update(
            {
                "port_id": None,
                "fixed_ip_address": None,
                "router_id": None,
                "status": "DOWN",
                "port_details": None,
            }
        )
        touch(fip)


def delete_port(cloud: Cloud, port_id: str) -> None:
    """Delete a port (no error if unknown) and disassociate the floating IPs bound to it."""
    if cloud.remove("ports", port_id) is not None:
        _unbind_floating_ips(cloud, port_id)


def ports_of_device(cloud: Cloud, device_id: str) -> list[Record]:
    """Every port (any project) whose ``device_id`` is ``device_id``."""
    return cloud.list("ports", None, lambda p: p.get("device_id") == device_id)
