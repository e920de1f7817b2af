"""Events (exchange clusterbus.events): handlers -> engine, past-tense facts.

Each event carries every new resource ID the handler learned, so the engine records it in the
same step (a leaked floating IP per retry is the classic failure otherwise).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, StrictBool

from engine.messages.common import ClusterId, Id, MachineId, Message, Reason


class Event(Message):
    cluster_id: ClusterId


class MachineEvent(Event):
    machine_id: MachineId


class PkiReady(Event):
    TYPE: ClassVar[str] = "pki.ready"


class PkiDeleted(Event):
    TYPE: ClassVar[str] = "pki.deleted"


class NetworkReady(Event):
    TYPE: ClassVar[str] = "network.ready"
    network_id: Id
    subnet_id: Id
    router_id: Id


class NetworkFailed(Event):
    TYPE: ClassVar[str] = "network.failed"
    reason: Reason


class NetworkDeleted(Event):
    TYPE: ClassVar[str] = "network.deleted"


class SecurityGroupsReady(Event):
    TYPE: ClassVar[str] = "security_groups.ready"
    controlplane_id: Id
    worker_id: Id
    bastion_id: Id | None = None


class SecurityGroupsFailed(Event):
    TYPE: ClassVar[str] = "security_groups.failed"
    reason: Reason


class SecurityGroupsDeleted(Event):
    TYPE: ClassVar[str] = "security_groups.deleted"


class LoadBalancerCreated(Event):
    """The load balancer exists (still PENDING_CREATE): its IDs are recorded at once."""

    TYPE: ClassVar[str] = "loadbalancer.created"
    loadbalancer_id: Id
    vip_port_id: Id | None = None
    vip_address: str | None = None


class LoadBalancerReady(Event):
    TYPE: ClassVar[str] = "loadbalancer.ready"
    loadbalancer_id: Id
    listener_ids: dict[int, Id] = Field(default_factory=dict)
    pool_ids: dict[int, Id] = Field(default_factory=dict)
    monitor_ids: dict[int, Id] = Field(default_factory=dict)
    vip_address: str
    vip_port_id: Id
    floating_ip_id: Id
    floating_ip: str


class LoadBalancerFailed(Event):
    TYPE: ClassVar[str] = "loadbalancer.failed"
    reason: Reason


class LoadBalancerDeleted(Event):
    TYPE: ClassVar[str] = "loadbalancer.deleted"


class ServerBuilding(MachineEvent):
    TYPE: ClassVar[str] = "server.building"
    server_id: Id
    port_ids: list[Id] = Field(default_factory=list, max_length=10)


class ServerActive(MachineEvent):
    TYPE: ClassVar[str] = "server.active"
    server_id: Id
    address: str


class ServerFailed(MachineEvent):
    TYPE: ClassVar[str] = "server.failed"
    reason: Reason
    server_id: Id | None = None


class ServerDeleted(MachineEvent):
    TYPE: ClassVar[str] = "server.deleted"


class FloatingIpReady(MachineEvent):
    TYPE: ClassVar[str] = "floatingip.ready"
    floating_ip_id: Id
    address: str


class MemberAdded(MachineEvent):
    TYPE: ClassVar[str] = "member.added"
    member_id: Id


class MemberOnline(MachineEvent):
    TYPE: ClassVar[str] = "member.online"


class MemberDeleted(MachineEvent):
    TYPE: ClassVar[str] = "member.deleted"


class TaskFailed(Event):
    """A handler error not tied to one part's own failure event."""

    TYPE: ClassVar[str] = "task.failed"
    task_type: str = Field(min_length=1, max_length=128)
    reason: Reason
    terminal: StrictBool
    machine_id: MachineId | None = None


EVENTS: tuple[type[Message], ...] = (
    PkiReady,
    PkiDeleted,
    NetworkReady,
    NetworkFailed,
    NetworkDeleted,
    SecurityGroupsReady,
    SecurityGroupsFailed,
    SecurityGroupsDeleted,
    LoadBalancerCreated,
    LoadBalancerReady,
    LoadBalancerFailed,
    LoadBalancerDeleted,
    ServerBuilding,
    ServerActive,
    ServerFailed,
    ServerDeleted,
    FloatingIpReady,
    MemberAdded,
    MemberOnline,
    MemberDeleted,
    TaskFailed,
)
