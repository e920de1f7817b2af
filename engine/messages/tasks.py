"""Tasks (exchange clusterbus.tasks): engine -> handlers, imperative.

Each task carries all a stateless handler needs, including every ID recorded so far (``known*``)
so that a re-run finds what an earlier, crashed attempt created instead of creating it twice.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, IPvAnyAddress, StrictBool

from engine.messages.common import (
    Attempt,
    Bootstrap,
    ClusterId,
    Id,
    LoadBalancerIds,
    MachineId,
    MachineRole,
    Message,
    NetworkIds,
    PortNumber,
    SecurityGroupIds,
)
from engine.messages.spec import API_PORT, Cidr, CloudName, ResourceName, SecurityGroupRuleSpec


class Task(Message):
    """Fields every task has; ``attempt`` is bumped by handlers when they re-publish via a delay."""

    cluster_id: ClusterId
    cloud: CloudName
    attempt: Attempt = 0


class MachineTask(Task):
    machine_id: MachineId


class EnsurePki(Task):
    TYPE: ClassVar[str] = "pki.ensure"


class EnsureNetwork(Task):
    TYPE: ClassVar[str] = "network.ensure"
    external_network: ResourceName
    node_cidr: Cidr
    dns_nameservers: list[IPvAnyAddress] = Field(default_factory=list, max_length=5)
    known: NetworkIds = Field(default_factory=NetworkIds)


class EnsureSecurityGroups(Task):
    TYPE: ClassVar[str] = "security_groups.ensure"
    node_cidr: Cidr
    bastion_enabled: StrictBool
    api_allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=50)
    bastion_ssh_cidrs: list[Cidr] = Field(default_factory=list, max_length=20)
    extra_rules: list[SecurityGroupRuleSpec] = Field(default_factory=list, max_length=50)
    api_extra_ports: list[PortNumber] = Field(default_factory=list, max_length=10)
    known: SecurityGroupIds = Field(default_factory=SecurityGroupIds)


class EnsureLoadBalancer(Task):
    TYPE: ClassVar[str] = "loadbalancer.ensure"
    subnet_id: Id
    network_id: Id
    external_network: ResourceName
    api_port: PortNumber = API_PORT
    extra_ports: list[PortNumber] = Field(default_factory=list, max_length=10)
    allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=50)
    provider: str | None = None
    known: LoadBalancerIds = Field(default_factory=LoadBalancerIds)


class CreateServer(MachineTask):
    TYPE: ClassVar[str] = "server.create"
    role: MachineRole
    pool: str | None = None
    index: int = Field(0, strict=True, ge=0)
    flavor: ResourceName
    image: ResourceName
    ssh_key_name: ResourceName | None = None
    network_id: Id
    subnet_id: Id
    security_group_ids: list[Id] = Field(default_factory=list, max_length=10)
    server_group_name: ResourceName | None = None
    bootstrap: Bootstrap = Bootstrap.NONE
    endpoint_host: str | None = None
    kubernetes_version: str | None = None
    known_server_id: Id | None = None


class PollServer(MachineTask):
    TYPE: ClassVar[str] = "server.poll"
    server_id: Id


class EnsureFloatingIp(MachineTask):
    TYPE: ClassVar[str] = "floatingip.ensure"
    server_id: Id
    external_network: ResourceName
    known_floating_ip_id: Id | None = None


class EnsureMember(MachineTask):
    TYPE: ClassVar[str] = "member.ensure"
    loadbalancer_id: Id
    pool_id: Id
    address: str
    port: PortNumber = API_PORT


class PollMember(MachineTask):
    TYPE: ClassVar[str] = "member.poll"
    pool_id: Id
    member_id: Id


class DeleteMember(MachineTask):
    """IDs may be unknown if their creation event was never seen; the handler finds by name."""

    TYPE: ClassVar[str] = "member.delete"
    loadbalancer_id: Id | None = None
    pool_id: Id | None = None
    member_id: Id | None = None


class DeleteServer(MachineTask):
    TYPE: ClassVar[str] = "server.delete"
    server_id: Id | None = None
    floating_ip_id: Id | None = None


class DeleteLoadBalancer(Task):
    TYPE: ClassVar[str] = "loadbalancer.delete"
    known: LoadBalancerIds = Field(default_factory=LoadBalancerIds)


class DeleteNetwork(Task):
    TYPE: ClassVar[str] = "network.delete"
    known: NetworkIds = Field(default_factory=NetworkIds)


class DeleteSecurityGroups(Task):
    TYPE: ClassVar[str] = "security_groups.delete"
    known: SecurityGroupIds = Field(default_factory=SecurityGroupIds)


class DeletePki(Task):
    """The cluster's secrets live in our store, not in a cloud: ``cloud`` is optional here."""

    TYPE: ClassVar[str] = "pki.delete"
    cloud: CloudName | None = None  # type: ignore[assignment]


TASKS: tuple[type[Message], ...] = (
    EnsurePki,
    EnsureNetwork,
    EnsureSecurityGroups,
    EnsureLoadBalancer,
    CreateServer,
    PollServer,
    EnsureFloatingIp,
    EnsureMember,
    PollMember,
    DeleteMember,
    DeleteServer,
    DeleteLoadBalancer,
    DeleteNetwork,
    DeleteSecurityGroups,
    DeletePki,
)
