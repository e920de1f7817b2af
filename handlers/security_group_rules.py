"""The desired rules of the cluster's security groups (DESIGN.md's table), as comparable keys.

Pure: no SDK calls. ``desired_rules`` says what each group must hold; ``rule_key`` turns a rule
(from Neutron or desired) into the key Neutron itself uses to spot duplicates (direction,
ethertype, protocol, port range, remote group, remote prefix), so reconciling is a set diff.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.base import TerminalError

CONTROLPLANE, WORKER, BASTION = "controlplane", "worker", "bastion"
ANYWHERE = "0.0.0.0/0"
API_PORT = 6443
NODE_PORTS = (30000, 32767)
_PROTOCOL_NUMBERS = {"icmp": "1", "tcp": "6", "udp": "17", "sctp": "132", "ipv6-icmp": "58"}
_PROTOCOL_NAMES = {number: name for name, number in _PROTOCOL_NUMBERS.items()}


@dataclass(frozen=True)
class RuleKey:
    direction: str
    ethertype: str
    protocol: str | None  # IP protocol number as text; None = any
    port_min: int | None
    port_max: int | None
    remote_group_id: str | None
    remote_ip_prefix: str | None  # None = anywhere


@dataclass(frozen=True)
class Rule:
    key: RuleKey
    description: str = ""

    def body(self, group_id: str) -> dict[str, Any]:
        """Neutron's create body for this rule in ``group_id``."""
        key = self.key
        return {
            "security_group_id": group_id,
            "direction": key.direction,
            "ethertype": key.ethertype,
            "protocol": _PROTOCOL_NAMES.get(key.protocol or "", key.protocol),  # "tcp", not "6"
            "port_range_min": key.port_min,
            "port_range_max": key.port_max,
            "remote_group_id": key.remote_group_id,
            "remote_ip_prefix": key.remote_ip_prefix,
            "description": self.description,
        }


def _protocol(value: Any) -> str | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    return _PROTOCOL_NUMBERS.get(text, text)


def _prefix(value: Any) -> tuple[str | None, str]:
    """(normalized prefix or None for anywhere, ethertype)."""
    if value in (None, ""):
        return None, "IPv4"
    network = ipaddress.ip_network(str(value), strict=False)
    ethertype = f"IPv{network.version}"
    return (None if network.prefixlen == 0 else str(network)), ethertype


def rule_key(rule: Mapping[str, Any]) -> RuleKey:
    """The identity of a rule as Neutron reports it (dict or SDK resource via ``to_dict``)."""
    prefix, _ = _prefix(rule.get("remote_ip_prefix"))
    return RuleKey(
        direction=str(rule.get("direction")),
        ethertype=str(rule.get("ethertype") or "IPv4"),
        protocol=_protocol(rule.get("protocol")),
        port_min=rule.get("port_range_min"),
        port_max=rule.get("port_range_max"),
        remote_group_id=rule.get("remote_group_id") or None,
        remote_ip_prefix=prefix,
    )


def is_default_egress(key: RuleKey) -> bool:
    """Neutron's own "allow all out" rules of every new group: always kept."""
    return key.direction == "egress" and key == RuleKey(
        "egress", key.ethertype, None, None, None, None, None
    )


def _ingress(ports: tuple[int, int], description: str, *, group: str | None = None,
         cidr: str | None = None, protocol: str = "tcp") -> Rule:  # fmt: skip
    prefix, ethertype = _prefix(cidr)
    key = RuleKey("ingress", ethertype, _protocol(protocol), ports[0], ports[1], group, prefix)
    return Rule(key, description)


def _from_cidrs(ports: tuple[int, int], description: str, cidrs: Iterable[str]) -> list[Rule]:
    return [_ingress(ports, description, cidr=c) for c in (list(cidrs) or [ANYWHERE])]


def _node_port_rules(node_cidr: str, groups: Mapping[str, str]) -> list[Rule]:
    rules = []
    for protocol in ("tcp", "udp"):
        rules.append(_ingress(NODE_PORTS, "Node Port Services", cidr=node_cidr, protocol=protocol))
        for role in (CONTROLPLANE, WORKER):
            rules.append(
                _ingress(NODE_PORTS, "Node Port Services", group=groups[role], protocol=protocol)
            )
    return rules


def _api_sources(task: Mapping[str, Any]) -> list[str]:
    """Who may reach 6443 on the nodes: the allowed CIDRs; when restricted, plus the node
    subnet, because Octavia's amphorae and health checks reach members from it."""
    allowed = [str(c) for c in task.get("api_allowed_cidrs") or []]
    return [*allowed, str(task["node_cidr"])] if allowed else [ANYWHERE]


def _extra(spec: Mapping[str, Any], groups: Mapping[str, str]) -> Rule:
    remote = spec.get("remote_group")
    if remote is not None and remote not in groups:
        raise TerminalError(f"extra security group rule references the disabled {remote} group")
    prefix, ethertype = _prefix(spec.get("remote_ip_prefix"))
    key = RuleKey(
        direction=str(spec.get("direction") or "ingress"),
        ethertype=ethertype,
        protocol=_protocol(spec.get("protocol")),
        port_min=spec.get("port_range_min"),
        port_max=spec.get("port_range_max"),
        remote_group_id=groups[remote] if remote else None,
        remote_ip_prefix=prefix,
    )
    return Rule(key, str(spec.get("description") or "Extra rule from the cluster spec"))


def desired_rules(task: Mapping[str, Any], groups: Mapping[str, str]) -> dict[str, list[Rule]]:
    """Role -> the rules its group must have (besides the default egress), for this task."""
    cp, worker, bastion = groups[CONTROLPLANE], groups[WORKER], groups.get(BASTION)
    controlplane = [
        *_from_cidrs((API_PORT, API_PORT), "Kubernetes API", _api_sources(task)),
        _ingress((2379, 2380), "Etcd", group=cp),
        _ingress((10250, 10250), "Kubelet API", group=cp),
        _ingress((10250, 10250), "Kubelet API (metrics-server)", group=worker),
    ]
    for port in task.get("api_extra_ports") or []:
        controlplane += _from_cidrs((port, port), "Additional API port", _api_sources(task))
    workers = [
        _ingress((10250, 10250), "Kubelet API", group=cp),
        _ingress((10250, 10250), "Kubelet API", group=worker),
        *_node_port_rules(str(task["node_cidr"]), groups),
    ]
    rules = {CONTROLPLANE: controlplane, WORKER: workers}
    if bastion is not None:
        controlplane.append(_ingress((22, 22), "SSH from the bastion", group=bastion))
        workers.append(_ingress((22, 22), "SSH from the bastion", group=bastion))
        ssh_from = [str(c) for c in task.get("bastion_ssh_cidrs") or []]
        rules[BASTION] = _from_cidrs((22, 22), "SSH", ssh_from)
    for spec in task.get("extra_rules") or []:
        roles = (CONTROLPLANE, WORKER) if spec.get("role") == "all" else (str(spec["role"]),)
        for role in roles:
            rules[role].append(_extra(spec, groups))
    return rules
