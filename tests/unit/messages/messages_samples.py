"""One plausible payload per message type of the catalog (shared by the message tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.messages import (
    REGISTRY,
    ClusterSnapshot,
    ClusterSpec,
    Condition,
    LoadBalancerIds,
    MachineSnapshot,
    MachineSummary,
    Message,
    NetworkIds,
    SecurityGroupIds,
    SecurityGroupRuleSpec,
)

CLUSTER = "demo"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BASE = {"cluster_id": CLUSTER, "cloud": "demo"}
CP0 = {**BASE, "machine_id": "demo-control-plane-0"}
EV = {"cluster_id": CLUSTER}
EV_M = {**EV, "machine_id": "demo-control-plane-0"}
LB = LoadBalancerIds(
    loadbalancer_id="lb-1",
    vip_port_id="port-1",
    vip_address="10.6.0.5",
    listener_ids={6443: "l-1"},
    pool_ids={6443: "p-1"},
    monitor_ids={6443: "m-1"},
    floating_ip_id="fip-1",
    floating_ip="127.100.0.7",
)
NET = NetworkIds(network_id="net-1", subnet_id="sub-1", router_id="r-1")
SGS = SecurityGroupIds(controlplane_id="sg-cp", worker_id="sg-w", bastion_id="sg-b")


def full_spec() -> dict[str, Any]:
    """A spec that sets every field."""
    return {
        "name": CLUSTER,
        "kubernetes_version": "v1.31.4",
        "cloud": "demo",
        "external_network": "public",
        "external_cidr": "127.100.0.0/16",
        "node_cidr": "10.6.0.0/22",
        "dns_nameservers": ["1.1.1.1", "2606:4700:4700::1111"],
        "control_plane": {"replicas": 3, "flavor": "m1.medium", "image": "ubuntu"},
        "worker_pools": [
            {"name": "md-0", "replicas": 2, "flavor": "m1.small", "image": "ubuntu"},
            {"name": "gpu", "replicas": 0, "flavor": "m1.large", "image": "ubuntu"},
        ],
        "bastion": {
            "enabled": True,
            "flavor": "m1.tiny",
            "image": "ubuntu",
            "allowed_ssh_cidrs": ["192.0.2.0/24"],
        },
        "api_load_balancer": {
            "allowed_cidrs": ["198.51.100.0/24"],
            "extra_ports": [9345],
            "provider": "amphora",
        },
        "ssh_key_name": "ops",
        "extra_security_group_rules": [
            {
                "role": "all",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 179,
                "port_range_max": 179,
                "remote_group": "worker",
                "description": "Calico BGP",
            },
            {"role": "worker", "protocol": "4", "remote_ip_prefix": "10.6.0.0/22"},
        ],
    }


def _payloads() -> dict[str, dict[str, Any]]:
    rule = SecurityGroupRuleSpec.model_validate(full_spec()["extra_security_group_rules"][0])
    snapshot = ClusterSnapshot(
        cluster_id=CLUSTER,
        state="ready",
        conditions={
            "NetworkReady": Condition(status="True", reason="Created", last_transition=NOW)
        },
        endpoint="https://127.100.0.7:6443",
        machines=[MachineSummary(id="demo-bastion", role="bastion", state="running")],
        created_at=NOW,
    )
    machine = MachineSnapshot(
        cluster_id=CLUSTER,
        machine_id="demo-md-0-1",
        role="worker",
        pool="md-0",
        index=1,
        state="running",
        server_id="srv-1",
        address="10.6.0.12",
    )
    return {
        "cluster.create": {"spec": ClusterSpec.model_validate(full_spec())},
        "cluster.delete": {},
        "cluster.scale": {"workers": {"md-0": 5}, "control_plane_replicas": 5},
        "cluster.retry": {},
        "cluster.reconcile": {"now": NOW},
        "pki.ensure": BASE,
        "network.ensure": {
            **BASE,
            "external_network": "public",
            "node_cidr": "10.6.0.0/24",
            "dns_nameservers": ["1.1.1.1"],
            "known": NET,
        },
        "security_groups.ensure": {
            **BASE,
            "node_cidr": "10.6.0.0/24",
            "bastion_enabled": True,
            "api_allowed_cidrs": ["0.0.0.0/0"],
            "bastion_ssh_cidrs": ["0.0.0.0/0"],
            "extra_rules": [rule],
            "api_extra_ports": [9345],
            "known": SGS,
        },
        "loadbalancer.ensure": {
            **BASE,
            "subnet_id": "sub-1",
            "network_id": "net-1",
            "external_network": "public",
            "extra_ports": [9345],
            "allowed_cidrs": [],
            "known": LB,
        },
        "server.create": {
            **CP0,
            "role": "control_plane",
            "index": 0,
            "flavor": "m1.medium",
            "image": "ubuntu",
            "ssh_key_name": "ops",
            "network_id": "net-1",
            "subnet_id": "sub-1",
            "security_group_ids": ["sg-cp"],
            "server_group_name": "demo-control-plane",
            "bootstrap": "init",
            "endpoint_host": "127.100.0.7",
            "known_server_id": None,
        },
        "server.poll": {**CP0, "server_id": "srv-1", "attempt": 3},
        "floatingip.ensure": {
            **BASE,
            "machine_id": "demo-bastion",
            "server_id": "srv-b",
            "external_network": "public",
            "known_floating_ip_id": None,
        },
        "member.ensure": {
            **CP0,
            "loadbalancer_id": "lb-1",
            "pool_id": "p-1",
            "address": "10.6.0.10",
            "port": 6443,
        },
        "member.poll": {**CP0, "pool_id": "p-1", "member_id": "mem-1"},
        "member.delete": {**CP0, "loadbalancer_id": "lb-1", "pool_id": "p-1", "member_id": None},
        "server.delete": {**CP0, "server_id": "srv-1", "floating_ip_id": None},
        "loadbalancer.delete": {**BASE, "known": LB},
        "network.delete": {**BASE, "known": NET},
        "security_groups.delete": {**BASE, "known": SGS},
        "pki.delete": {"cluster_id": CLUSTER},
        "pki.ready": EV,
        "pki.deleted": EV,
        "network.ready": {**EV, "network_id": "net-1", "subnet_id": "sub-1", "router_id": "r-1"},
        "network.failed": {**EV, "reason": "quota exceeded for network"},
        "network.deleted": EV,
        "security_groups.ready": {
            **EV,
            "controlplane_id": "a",
            "worker_id": "b",
            "bastion_id": None,
        },
        "security_groups.failed": {**EV, "reason": "x"},
        "security_groups.deleted": EV,
        "loadbalancer.created": {
            **EV,
            "loadbalancer_id": "lb-1",
            "vip_port_id": "port-1",
            "vip_address": "10.6.0.5",
        },
        "loadbalancer.ready": {
            **EV,
            **LB.model_dump(exclude={"vip_address", "vip_port_id"}),
            "vip_address": "10.6.0.5",
            "vip_port_id": "port-1",
        },
        "loadbalancer.failed": {**EV, "reason": "ERROR"},
        "loadbalancer.deleted": EV,
        "server.building": {**EV_M, "server_id": "srv-1", "port_ids": ["port-2"]},
        "server.active": {**EV_M, "server_id": "srv-1", "address": "10.6.0.10"},
        "server.failed": {**EV_M, "reason": "Quota exceeded for cores", "server_id": None},
        "server.deleted": EV_M,
        "floatingip.ready": {
            **EV,
            "machine_id": "demo-bastion",
            "floating_ip_id": "fip-2",
            "address": "127.100.0.9",
        },
        "member.added": {**EV_M, "member_id": "mem-1"},
        "member.online": EV_M,
        "member.deleted": EV_M,
        "task.failed": {**EV, "task_type": "pki.ensure", "reason": "boom", "terminal": False},
        "cluster.state_changed": {
            "cluster_id": CLUSTER,
            "from_state": "provisioning_workers",
            "to_state": "ready",
            "trigger": "member.online",
            "snapshot": snapshot,
        },
        "machine.state_changed": {
            "cluster_id": CLUSTER,
            "machine_id": "demo-md-0-1",
            "from_state": None,
            "to_state": "running",
            "trigger": "server.active",
            "snapshot": machine,
        },
    }


def samples() -> dict[str, Message]:
    """type -> a valid payload model instance, for every type in the registry."""
    payloads = _payloads()
    return {type_: REGISTRY[type_](**payloads[type_]) for type_ in REGISTRY}
