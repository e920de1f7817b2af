"""A fake cloud that answers tasks with the events real handlers would publish, and a driver."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachines import ClusterAggregate, Emit, Outcome, handle

T0 = datetime(2025, 1, 1, tzinfo=UTC)
Json = dict[str, Any]
Event = tuple[str, Json]


def make_spec(
    name: str = "demo",
    *,
    cp: int = 3,
    workers: dict[str, int] | None = None,
    bastion: bool = True,
) -> Json:
    """A ClusterSpec as the engine dumps it (JSON mode)."""
    pools = workers if workers is not None else {"md": 2}
    return {
        "name": name,
        "kubernetes_version": "v1.30.2",
        "cloud": "sim",
        "external_network": "public",
        "external_cidr": "127.100.0.0/16",
        "node_cidr": "10.6.0.0/24",
        "dns_nameservers": ["127.0.0.53"],
        "control_plane": {"replicas": cp, "flavor": "m1.medium", "image": "ubuntu"},
        "worker_pools": [
            {"name": p, "replicas": n, "flavor": "m1.medium", "image": "ubuntu"}
            for p, n in pools.items()
        ],
        "bastion": {
            "enabled": bastion,
            "flavor": "m1.tiny",
            "image": "ubuntu",
            "allowed_ssh_cidrs": ["0.0.0.0/0"],
        },
        "api_load_balancer": {"allowed_cidrs": [], "extra_ports": [], "provider": None},
        "ssh_key_name": "key",
        "extra_security_group_rules": [],
    }


def answer(task: Emit) -> list[Event]:
    """The successful completion event(s) of a task."""
    d = task.data
    cid = d["cluster_id"]
    mid = d.get("machine_id")
    base: Json = {"cluster_id": cid}
    mach: Json = {**base, "machine_id": mid}
    table: dict[str, Callable[[], list[Event]]] = {
        "pki.ensure": lambda: [("pki.ready", base)],
        "network.ensure": lambda: [
            ("network.ready", {**base, "network_id": f"net-{cid}", "subnet_id": f"sub-{cid}",
                               "router_id": f"rtr-{cid}"}),
        ],
        "security_groups.ensure": lambda: [
            ("security_groups.ready", {**base, "controlplane_id": "sg-cp", "worker_id": "sg-w",
                                       "bastion_id": "sg-b" if d["bastion_enabled"] else None}),
        ],
        "loadbalancer.ensure": lambda: [
            ("loadbalancer.created", {**base, "loadbalancer_id": "lb-1", "vip_port_id": "vip-port",
                                      "vip_address": "10.6.0.10"}),
            ("loadbalancer.ready", {**base, "loadbalancer_id": "lb-1",
                                    "listener_ids": {6443: "lis-1"}, "pool_ids": {6443: "pool-1"},
                                    "monitor_ids": {6443: "mon-1"}, "vip_address": "10.6.0.10",
                                    "vip_port_id": "vip-port", "floating_ip_id": "fip-lb",
                                    "floating_ip": "127.100.0.5"}),
        ],
        "server.create": lambda: [
            ("server.building", {**mach, "server_id": f"srv-{mid}", "port_ids": [f"port-{mid}"]})
        ],
        "server.poll": lambda: [
            ("server.active", {**mach, "server_id": d["server_id"], "address": f"10.6.0.{_n(mid)}"})
        ],
        "floatingip.ensure": lambda: [
            ("floatingip.ready", {**mach, "floating_ip_id": "fip-b", "address": "127.100.0.9"})
        ],
        "member.ensure": lambda: [("member.added", {**mach, "member_id": f"mem-{mid}"})],
        "member.poll": lambda: [("member.online", mach)],
        "member.delete": lambda: [("member.deleted", mach)],
        "server.delete": lambda: [("server.deleted", mach)],
        "loadbalancer.delete": lambda: [("loadbalancer.deleted", base)],
        "network.delete": lambda: [("network.deleted", base)],
        "security_groups.delete": lambda: [("security_groups.deleted", base)],
        "pki.delete": lambda: [("pki.deleted", base)],
    }  # fmt: skip
    return table[task.type]()


def roundtrip(agg: ClusterAggregate | None) -> ClusterAggregate | None:
    """Through JSON rows and back, as the store does between two messages."""
    if agg is None:
        return None
    doc, machines = json.loads(json.dumps(agg.to_rows()))
    rows = [(m[0], m[1], m[2], m[3]) for m in machines]
    return ClusterAggregate.from_rows(agg.id, agg.state.value, doc, rows)


def _n(machine_id: str | None) -> int:
    return 10 + (sum(map(ord, machine_id or "")) % 200)


@dataclass
class Driver:
    """Feeds messages to ``handle`` and keeps what came out."""

    agg: ClusterAggregate | None = None
    now: datetime = T0
    log: list[tuple[str, Json, Outcome]] = field(default_factory=list)
    queue: deque[Emit] = field(default_factory=deque)

    def send(self, message_type: str, data: Json) -> Outcome:
        self.now += timedelta(seconds=1)
        self.agg, outcome = handle(roundtrip(self.agg), message_type, data, now=self.now)
        self.log.append((message_type, data, outcome))
        self.queue.extend(outcome.emits)
        return outcome

    def create(self, spec: Json) -> Outcome:
        return self.send("cluster.create", {"spec": spec})

    def run(self, answer_fn: Callable[[Emit], list[Event]] = answer, limit: int = 10_000) -> None:
        """Answer queued tasks in FIFO order until none is left."""
        for _ in range(limit):
            if not self.queue:
                return
            for message_type, data in answer_fn(self.queue.popleft()):
                self.send(message_type, data)
        raise AssertionError("did not settle")

    def emitted(self) -> list[Emit]:
        return [e for _, _, outcome in self.log for e in outcome.emits]

    @property
    def cluster(self) -> ClusterAggregate:
        assert self.agg is not None
        return self.agg
