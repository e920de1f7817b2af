"""Shared vocabulary of the catalog: base models, enums, recorded OpenStack IDs, snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

import statemachines.states as _states

MAX_REASON = 1000

Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ClusterId = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
]
MachineId = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
]
Attempt = Annotated[int, Field(strict=True, ge=0, le=1000)]
PortNumber = Annotated[int, Field(strict=True, ge=1, le=65535)]


def _truncate(value: Any) -> Any:
    """Cloud error texts can be long; keep messages small instead of rejecting them."""
    if isinstance(value, str) and len(value) > MAX_REASON:
        return value[: MAX_REASON - 1] + "…"
    return value


Reason = Annotated[str, BeforeValidator(_truncate), StringConstraints(max_length=MAX_REASON)]


class Message(BaseModel):
    """Base of every payload: frozen, no unknown fields, routing key in ``TYPE``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]


# One vocabulary: the states, roles and conditions are those of the state machines.
ClusterState = _states.ClusterState
MachineState = _states.MachineState
MachineRole = _states.Role
Bootstrap = _states.Bootstrap
ConditionType = _states.Cond


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NetworkIds(_Part):
    """What the network handler created; any may be unknown yet."""

    network_id: Id | None = None
    subnet_id: Id | None = None
    router_id: Id | None = None


class SecurityGroupIds(_Part):
    controlplane_id: Id | None = None
    worker_id: Id | None = None
    bastion_id: Id | None = None


class LoadBalancerIds(_Part):
    """The API load balancer and its children, keyed by port where there is one per port."""

    loadbalancer_id: Id | None = None
    vip_port_id: Id | None = None
    vip_address: Id | None = None
    listener_ids: dict[int, Id] = Field(default_factory=dict)
    pool_ids: dict[int, Id] = Field(default_factory=dict)
    monitor_ids: dict[int, Id] = Field(default_factory=dict)
    floating_ip_id: Id | None = None
    floating_ip: Id | None = None


class Condition(_Part):
    """A Cluster-API style condition."""

    status: Literal["True", "False", "Unknown"]
    reason: Reason = ""
    message: Reason = ""
    last_transition: datetime | None = None


class MachineSummary(_Part):
    """One machine as seen in a cluster snapshot."""

    id: MachineId
    role: MachineRole
    pool: str | None = None
    state: MachineState
    address: str | None = None
    failure: Reason | None = None


class ClusterSnapshot(_Part):
    """The cluster as other services may see it: no secrets, no credentials."""

    cluster_id: ClusterId
    state: ClusterState
    conditions: dict[ConditionType, Condition] = Field(default_factory=dict)
    endpoint: str | None = Field(None, description="https://<VIP floating IP>:6443")
    failure_reason: Reason | None = None
    machines: list[MachineSummary] = Field(default_factory=list)
    machine_counts: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="role -> state -> count (large clusters may omit machines)",
    )
    timings: dict[str, datetime] = Field(
        default_factory=dict, description="state -> when the cluster first entered it"
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MachineSnapshot(_Part):
    """One machine as other services may see it."""

    cluster_id: ClusterId
    machine_id: MachineId
    role: MachineRole
    pool: str | None = None
    index: int = 0
    state: MachineState
    server_id: Id | None = None
    address: str | None = None
    floating_ip: str | None = None
    failure_reason: Reason | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
