"""Task payloads, built from the spec and the recorded IDs (shapes of engine/messages/tasks.py)."""

from __future__ import annotations

from typing import Any

from statemachines.model import ClusterAggregate, Json, MachineAggregate
from statemachines.states import API_PORT, Role


def spec_cloud(agg: ClusterAggregate) -> str:
    return str(agg.spec["cloud"])


def bastion_spec(spec: Json) -> Json:
    return dict(spec.get("bastion") or {"enabled": False})


def bastion_enabled(spec: Json) -> bool:
    return bool(bastion_spec(spec).get("enabled", True))


def lb_spec(spec: Json) -> Json:
    return dict(spec.get("api_load_balancer") or {})


def base(agg: ClusterAggregate) -> Json:
    """Fields every task has."""
    return {"cluster_id": agg.id, "cloud": spec_cloud(agg), "attempt": 0}


def _int_keys(ids: dict[str, Any]) -> dict[int, Any]:
    # Stored with string keys (JSON); the task models key listeners/pools by port number.
    return {int(k): v for k, v in ids.items()}


def known_network(agg: ClusterAggregate) -> Json:
    return dict(agg.ids["network"])


def known_security_groups(agg: ClusterAggregate) -> Json:
    return dict(agg.ids["security_groups"])


def known_loadbalancer(agg: ClusterAggregate) -> Json:
    lb = dict(agg.ids["loadbalancer"])
    for key in ("listener_ids", "pool_ids", "monitor_ids"):
        lb[key] = _int_keys(lb[key])
    return lb


def pki_ensure(agg: ClusterAggregate) -> Json:
    return base(agg)


def network_ensure(agg: ClusterAggregate) -> Json:
    spec = agg.spec
    return base(agg) | {
        "external_network": spec["external_network"],
        "node_cidr": spec["node_cidr"],
        "dns_nameservers": list(spec.get("dns_nameservers") or []),
        "known": known_network(agg),
    }


def security_groups_ensure(agg: ClusterAggregate) -> Json:
    spec, lb = agg.spec, lb_spec(agg.spec)
    return base(agg) | {
        "node_cidr": spec["node_cidr"],
        "bastion_enabled": bastion_enabled(spec),
        "api_allowed_cidrs": list(lb.get("allowed_cidrs") or []),
        "bastion_ssh_cidrs": list(bastion_spec(spec).get("allowed_ssh_cidrs") or []),
        "extra_rules": list(spec.get("extra_security_group_rules") or []),
        "api_extra_ports": list(lb.get("extra_ports") or []),
        "known": known_security_groups(agg),
    }


def loadbalancer_ensure(agg: ClusterAggregate) -> Json:
    lb, net = lb_spec(agg.spec), agg.ids["network"]
    return base(agg) | {
        "subnet_id": net["subnet_id"],
        "network_id": net["network_id"],
        "external_network": agg.spec["external_network"],
        "api_port": API_PORT,
        "extra_ports": list(lb.get("extra_ports") or []),
        "allowed_cidrs": list(lb.get("allowed_cidrs") or []),
        "provider": lb.get("provider"),
        "known": known_loadbalancer(agg),
    }


def _machine_spec(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    if m.role is Role.BASTION:
        return bastion_spec(agg.spec)
    if m.role is Role.CONTROL_PLANE:
        return dict(agg.spec["control_plane"])
    pools = {p["name"]: p for p in agg.spec.get("worker_pools") or []}
    return dict(pools[m.pool])


def _security_group(agg: ClusterAggregate, role: Role) -> list[str]:
    groups = agg.ids["security_groups"]
    key = {Role.CONTROL_PLANE: "controlplane_id", Role.WORKER: "worker_id"}.get(role, "bastion_id")
    return [groups[key]] if groups.get(key) else []


def _server_group(agg: ClusterAggregate, m: MachineAggregate) -> str | None:
    # Soft anti-affinity for the control plane (and per worker pool); the bastion is alone.
    if m.role is Role.CONTROL_PLANE:
        return f"{agg.id}-control-plane"
    return f"{agg.id}-{m.pool}" if m.role is Role.WORKER else None


def machine_base(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return base(agg) | {"machine_id": m.id}


def server_create(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    spec, net = _machine_spec(agg, m), agg.ids["network"]
    return machine_base(agg, m) | {
        "role": m.role.value,
        "pool": m.pool,
        "index": m.index,
        "flavor": spec["flavor"],
        "image": spec["image"],
        "ssh_key_name": agg.spec.get("ssh_key_name"),
        "network_id": net["network_id"],
        "subnet_id": net["subnet_id"],
        "security_group_ids": _security_group(agg, m.role),
        "server_group_name": _server_group(agg, m),
        "bootstrap": m.bootstrap,
        "endpoint_host": agg.ids["endpoint"]["host"] if m.role is not Role.BASTION else None,
        "kubernetes_version": agg.spec.get("kubernetes_version"),
        "known_server_id": m.server_id,
    }


def server_poll(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {"server_id": m.server_id}


def floatingip_ensure(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {
        "server_id": m.server_id,
        "external_network": agg.spec["external_network"],
        "known_floating_ip_id": m.floating_ip_id,
    }


def api_pool_id(agg: ClusterAggregate) -> str | None:
    pools = agg.ids["loadbalancer"]["pool_ids"]
    value = pools.get(str(API_PORT))
    return str(value) if value else None


def member_ensure(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {
        "loadbalancer_id": agg.ids["loadbalancer"]["loadbalancer_id"],
        "pool_id": api_pool_id(agg),
        "address": m.address,
        "port": API_PORT,
    }


def member_poll(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {"pool_id": api_pool_id(agg), "member_id": m.member_id}


def member_delete(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {
        "loadbalancer_id": agg.ids["loadbalancer"]["loadbalancer_id"],
        "pool_id": api_pool_id(agg),
        "member_id": m.member_id,
    }


def server_delete(agg: ClusterAggregate, m: MachineAggregate) -> Json:
    return machine_base(agg, m) | {"server_id": m.server_id, "floating_ip_id": m.floating_ip_id}


def loadbalancer_delete(agg: ClusterAggregate) -> Json:
    return base(agg) | {"known": known_loadbalancer(agg)}


def network_delete(agg: ClusterAggregate) -> Json:
    return base(agg) | {"known": known_network(agg)}


def security_groups_delete(agg: ClusterAggregate) -> Json:
    return base(agg) | {"known": known_security_groups(agg)}


def pki_delete(agg: ClusterAggregate) -> Json:
    return base(agg)
