"""Plain data the state machines operate on; it round-trips through the store's rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from statemachines.states import ClusterState, Cond, MachineState, Role

Json = dict[str, Any]
MachineRow = tuple[str, str, str, Json]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Emit:
    """A task (or command) the engine must publish."""

    type: str
    data: Json


@dataclass(frozen=True)
class Change:
    """One state change (or one ignored message: ``ignored=True``, from == to)."""

    kind: Literal["cluster", "machine"]
    id: str
    from_state: str
    to_state: str
    trigger: str
    ignored: bool = False
    note: str = ""


@dataclass
class Outcome:
    emits: list[Emit] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class Condition:
    """Replaced, never changed: its JSON form is built once (every applied message stores it)."""

    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition: datetime | None = None

    def to_json(self) -> Json:
        return self._json

    @cached_property
    def _json(self) -> Json:
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "last_transition": _iso(self.last_transition),
        }

    @classmethod
    def from_json(cls, doc: Json) -> Condition:
        return cls(doc["status"], doc["reason"], doc["message"], _dt(doc["last_transition"]))


@dataclass
class Awaiting:
    """A task whose answer is awaited; the reconciler re-emits it after ``deadline``."""

    task: str
    data: Json
    since: datetime
    deadline: datetime
    give_up: datetime | None = None  # past this, the part fails (machine build timeout)
    reemits: int = 0

    def to_json(self) -> Json:
        return {
            "task": self.task,
            "data": self.data,
            "since": _iso(self.since),
            "deadline": _iso(self.deadline),
            "give_up": _iso(self.give_up),
            "reemits": self.reemits,
        }

    @classmethod
    def from_json(cls, doc: Json) -> Awaiting:
        since, deadline = _dt(doc["since"]), _dt(doc["deadline"])
        assert since is not None and deadline is not None
        return cls(doc["task"], doc["data"], since, deadline, _dt(doc["give_up"]), doc["reemits"])

    @property
    def interval(self) -> timedelta:
        return self.deadline - self.since


@dataclass
class MachineAggregate:
    id: str
    role: Role
    pool: str | None
    index: int
    state: MachineState = MachineState.PENDING
    server_id: str | None = None
    port_ids: list[str] = field(default_factory=list)
    address: str | None = None
    floating_ip_id: str | None = None
    floating_ip: str | None = None
    member_id: str | None = None
    member_requested: bool = False
    bootstrap: str | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_doc(self) -> Json:
        return {
            "pool": self.pool,
            "index": self.index,
            "server_id": self.server_id,
            "port_ids": list(self.port_ids),
            "address": self.address,
            "floating_ip_id": self.floating_ip_id,
            "floating_ip": self.floating_ip,
            "member_id": self.member_id,
            "member_requested": self.member_requested,
            "bootstrap": self.bootstrap,
            "failure_reason": self.failure_reason,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_row(cls, machine_id: str, role: str, state: str, doc: Json) -> MachineAggregate:
        return cls(
            id=machine_id,
            role=Role(role),
            pool=doc["pool"],
            index=doc["index"],
            state=MachineState(state),
            server_id=doc["server_id"],
            port_ids=list(doc["port_ids"]),
            address=doc["address"],
            floating_ip_id=doc["floating_ip_id"],
            floating_ip=doc["floating_ip"],
            member_id=doc["member_id"],
            member_requested=doc["member_requested"],
            bootstrap=doc["bootstrap"],
            failure_reason=doc["failure_reason"],
            created_at=_dt(doc["created_at"]),
            updated_at=_dt(doc["updated_at"]),
        )

    def summary(self) -> Json:
        """The machine as a snapshot shows it (no secrets)."""
        return {
            "id": self.id,
            "role": self.role.value,
            "pool": self.pool,
            "state": self.state.value,
            "address": self.address,
            "failure": self.failure_reason,
        }


def empty_ids() -> Json:
    """Recorded OpenStack IDs, one dict per part, shaped like the tasks' ``known`` fields."""
    return {
        "network": {"network_id": None, "subnet_id": None, "router_id": None},
        "security_groups": {"controlplane_id": None, "worker_id": None, "bastion_id": None},
        "loadbalancer": {
            "loadbalancer_id": None,
            "vip_port_id": None,
            "vip_address": None,
            "listener_ids": {},
            "pool_ids": {},
            "monitor_ids": {},
            "floating_ip_id": None,
            "floating_ip": None,
        },
        "endpoint": {"host": None, "port": None},
        "pki_ready": False,
    }


@dataclass
class ClusterAggregate:
    """The Cluster plus its Machines."""

    id: str
    state: ClusterState
    spec: Json
    conditions: dict[str, Condition] = field(default_factory=dict)
    ids: Json = field(default_factory=empty_ids)
    failure_reason: str | None = None
    failed_from: ClusterState | None = None
    awaiting: dict[str, Awaiting] = field(default_factory=dict)
    machines: dict[str, MachineAggregate] = field(default_factory=dict)
    timings: dict[str, str] = field(default_factory=dict)  # state -> first entered (ISO)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_rows(self) -> tuple[Json, list[MachineRow]]:
        """(cluster doc, [(machine_id, role, state, machine doc)]), all JSON-safe."""
        doc: Json = {
            "spec": self.spec,
            "conditions": {k: c.to_json() for k, c in self.conditions.items()},
            "ids": self.ids,
            "failure_reason": self.failure_reason,
            "failed_from": self.failed_from.value if self.failed_from else None,
            "awaiting": {k: a.to_json() for k, a in self.awaiting.items()},
            "timings": dict(self.timings),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        rows = [(m.id, m.role.value, m.state.value, m.to_doc()) for m in self.machines.values()]
        return doc, rows

    @classmethod
    def from_rows(
        cls, cluster_id: str, state: str, doc: Json, machines: list[MachineRow]
    ) -> ClusterAggregate:
        ms = [MachineAggregate.from_row(*row) for row in machines]
        failed_from = doc.get("failed_from")
        return cls(
            id=cluster_id,
            state=ClusterState(state),
            spec=doc["spec"],
            conditions={k: Condition.from_json(v) for k, v in doc["conditions"].items()},
            ids=doc["ids"],
            failure_reason=doc["failure_reason"],
            failed_from=ClusterState(failed_from) if failed_from else None,
            awaiting={k: Awaiting.from_json(v) for k, v in doc["awaiting"].items()},
            machines={m.id: m for m in sorted(ms, key=_machine_order)},
            timings=dict(doc.get("timings", {})),
            created_at=_dt(doc["created_at"]),
            updated_at=_dt(doc["updated_at"]),
        )

    @property
    def endpoint(self) -> str | None:
        host, port = self.ids["endpoint"]["host"], self.ids["endpoint"]["port"]
        return f"https://{host}:{port}" if host else None

    def snapshot(self) -> Json:
        """What other services may see: state, conditions, endpoint, machines; no secrets."""
        counts: dict[str, dict[str, int]] = {}
        for m in self.machines.values():
            per_role = counts.setdefault(m.role.value, {})
            per_role[m.state.value] = per_role.get(m.state.value, 0) + 1
        return {
            "cluster_id": self.id,
            "state": self.state.value,
            "conditions": {k: c.to_json() for k, c in self.conditions.items()},
            "endpoint": self.endpoint,
            "failure_reason": self.failure_reason,
            "machines": [m.summary() for m in self.machines.values()],
            "machine_counts": counts,
            "timings": dict(self.timings),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }

    def condition_true(self, name: Cond) -> bool:
        cond = self.conditions.get(name.value)
        return cond is not None and cond.status == "True"


def _machine_order(m: MachineAggregate) -> tuple[int, str, int]:
    """Bastion, control plane, then worker pools; by index inside each."""
    rank = {Role.BASTION: 0, Role.CONTROL_PLANE: 1, Role.WORKER: 2}[m.role]
    return rank, m.pool or "", m.index
