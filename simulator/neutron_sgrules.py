"""Security group rules: validation, duplicate detection, storage, and the built-in rules.

New groups get Neutron's default egress rules (IPv4 and IPv6, anywhere); each project's
``default`` group, created lazily on first use, also admits ingress from its own members.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from simulator.core import Cloud, Record
from simulator.neutron_base import check_quota, neutron_error, new_record, touch

DEFAULT = "default"
_PROTOCOL_NUMBERS = {
    "icmp": "1",
    "igmp": "2",
    "tcp": "6",
    "udp": "17",
    "gre": "47",
    "esp": "50",
    "ah": "51",
    "ipv6-icmp": "58",
    "icmpv6": "58",
    "sctp": "132",
    "udplite": "136",
    "dccp": "33",
    "vrrp": "112",
}


_PORTED = {"6", "17", "132", "136", "33"}  # protocols whose rules take a port range


_ICMP = {"1", "58"}


def group_not_found(group_id: str) -> Exception:
    return neutron_error(404, "SecurityGroupNotFound", f"Security group {group_id} does not exist")


def _bad(message: str) -> Exception:
    return neutron_error(400, "HTTPBadRequest", message)


def _protocol(value: Any) -> str | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    if text in _PROTOCOL_NUMBERS:
        return text
    raise _bad(f"Security group rule protocol {value} not supported.")


def _ports(protocol: str | None, low: Any, high: Any) -> tuple[int | None, int | None]:
    if low is None and high is None:
        return None, None
    number = _PROTOCOL_NUMBERS.get(protocol or "", protocol)
    if number is None:
        raise _bad("Must also specify protocol if port range is given.")
    try:
        lo, hi = (int(low) if low is not None else None), (int(high) if high is not None else None)
    except (TypeError, ValueError) as exc:
        raise _bad(f"Invalid value for port {low}") from exc
    if number in _PORTED and (lo is None or hi is None or not 1 <= lo <= hi <= 65535):
        raise _bad("For TCP/UDP protocols, port_range_min must be <= port_range_max")
    if number in _ICMP and any(v is not None and not 0 <= v <= 255 for v in (lo, hi)):
        raise _bad(f"Invalid value for ICMP type/code {lo}/{hi}.")
    return lo, hi


def _remote_prefix(prefix: Any, ethertype: str) -> str | None:
    if prefix in (None, ""):
        return None
    try:
        network = ipaddress.ip_network(str(prefix), strict=False)
    except ValueError as exc:
        raise _bad(f"'{prefix}' is not a valid IP prefix.") from exc
    if f"IPv{network.version}" != ethertype:
        raise _bad(f"Conflicting value ethertype {ethertype} for CIDR {prefix}")
    return str(network)


def _rule_fields(cloud: Cloud, group: Record, body: Record) -> Record:
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        raise _bad(
            f"Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress']."
        )
    ethertype = body.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise _bad(
            f"Invalid input for ethertype. Reason: '{ethertype}' is not in ['IPv4', 'IPv6']."
        )
    protocol = _protocol(body.get("protocol"))
    low, high = _ports(protocol, body.get("port_range_min"), body.get("port_range_max"))
    remote_group_id = body.get("remote_group_id")
    prefix = _remote_prefix(body.get("remote_ip_prefix"), ethertype)
    if remote_group_id and prefix:
        raise _bad("Only remote_ip_prefix or remote_group_id may be provided.")
    if (
        remote_group_id
        and cloud.find("security_groups", remote_group_id, group["_project_id"]) is None
    ):
        raise group_not_found(remote_group_id)
    return {
        "security_group_id": group["id"],
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": low,
        "port_range_max": high,
        "remote_ip_prefix": prefix,
        "normalized_cidr": prefix,
        "remote_group_id": remote_group_id,
        "remote_address_group_id": None,
        "belongs_to_default_sg": group["name"] == DEFAULT,
    }


_IDENTITY = (
    "direction",
    "ethertype",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
)


def _same_rule(a: Record, b: Record) -> bool:
    def proto(r: Record) -> str | None:
        return _PROTOCOL_NUMBERS.get(r["protocol"] or "", r["protocol"])

    return proto(a) == proto(b) and all(a[k] == b[k] for k in _IDENTITY)


def add_rule(cloud: Cloud, group: Record, body: Record) -> Record:
    fields = _rule_fields(cloud, group, body)
    for rule in cloud.list(
        "security_group_rules", None, lambda r: r["security_group_id"] == group["id"]
    ):
        if _same_rule(rule, fields):
            raise neutron_error(
                409,
                "SecurityGroupRuleExists",
                f"Security group rule already exists. Rule id is {rule['id']}.",
            )
    rule = new_record(cloud, "security_group_rules", group["_project_id"], fields)
    rule["description"] = str(body.get("description") or "")
    touch(group)
    return rule


def create_rule(cloud: Cloud, project_id: str | None, body: Record) -> Record:
    """Validate and store one rule of a group visible to ``project_id`` (None: any)."""
    group_id = str(body.get("security_group_id") or "")
    group = cloud.find("security_groups", group_id, project_id)
    if group is None:
        raise group_not_found(group_id)
    check_quota(cloud, group["_project_id"], "security_group_rule")
    return add_rule(cloud, group, body)


def ensure_default_group(cloud: Cloud, project_id: str) -> Record:
    """The project's ``default`` group, created with its default rules on first use."""
    for group in cloud.list("security_groups", project_id, lambda g: g["name"] == DEFAULT):
        if group["_project_id"] == project_id:
            return group
    group = new_group(cloud, project_id, DEFAULT, "Default security group")
    for ethertype in ("IPv4", "IPv6"):
        add_rule(
            cloud,
            group,
            {"direction": "ingress", "ethertype": ethertype, "remote_group_id": group["id"]},
        )
    return group


def new_group(cloud: Cloud, project_id: str, name: str, description: str) -> Record:
    group = new_record(
        cloud, "security_groups", project_id, {"name": name, "stateful": True, "shared": False}
    )
    group["description"] = description
    for ethertype in ("IPv4", "IPv6"):
        add_rule(cloud, group, {"direction": "egress", "ethertype": ethertype})
    return group
