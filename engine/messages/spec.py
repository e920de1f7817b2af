"""ClusterSpec: everything a user may ask for in ``cluster.create``, validated up front.

Design choices:
- ``external_cidr`` is a field of the spec (default: the simulator's external network,
  127.100.0.0/16) rather than a validation context, so a spec is self-contained and a bad one
  is rejected the same way wherever it is parsed.
- Integers and booleans are strict (``"3"`` or ``1.0`` is not a replica count); strings, IP
  networks and enums are parsed from their JSON forms.
- Names start with a letter (a DNS-1123 label that also makes a valid hostname prefix); machine
  names ``<cluster>-<pool>-<n>`` must fit 63 characters for the largest pool index.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SUPPORTED_MINORS = range(28, 34)  # Kubernetes v1.28 .. v1.33
DEFAULT_KUBERNETES_VERSION = "v1.30.2"
DEFAULT_IMAGE = "ubuntu-22.04-kube-v1.30.2"
API_PORT = 6443
MAX_HOSTNAME = 63
MAX_POOL_REPLICAS = 500
RESERVED_POOL_NAMES = frozenset({"control-plane", "bastion"})  # would collide with machine ids

_VERSION = re.compile(r"^v1\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

ClusterName = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
]
PoolName = Annotated[
    str, StringConstraints(min_length=1, max_length=20, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
]
ResourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")
]
CloudName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Replicas = Annotated[int, Field(strict=True, ge=0, le=MAX_POOL_REPLICAS)]
ControlPlaneReplicas = Annotated[int, Field(strict=True, ge=1, le=7)]
Protocol = Annotated[str, StringConstraints(pattern=r"^(tcp|udp|icmp|\d{1,3})$")]


def _strict_network(value: Any) -> Any:
    """Reject '10.6.0.1/24': a CIDR with host bits set is a typo, not a network."""
    if isinstance(value, str):
        try:
            IPv4Network(value, strict=True)
        except ValueError as error:
            raise _error("cidr", f"not a valid IPv4 network: {error}") from None
    return value


Cidr = Annotated[IPv4Network, BeforeValidator(_strict_network)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def check_odd(value: int | None) -> int | None:
    """etcd quorum: an even control plane tolerates no more failures than the odd one below it."""
    if value is not None and value % 2 == 0:
        raise _error("odd", "must be odd")
    return value


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _error("duplicate", f"duplicate {what} {value!r}")
        seen.add(value)


class ControlPlaneSpec(_Spec):
    """The control-plane machines (kubeadm init on the first, join on the rest)."""

    replicas: ControlPlaneReplicas = 3
    flavor: ResourceName = "m1.medium"
    image: ResourceName = DEFAULT_IMAGE

    @field_validator("replicas")
    @classmethod
    def _odd(cls, value: int) -> int:
        check_odd(value)
        return value


class WorkerPoolSpec(_Spec):
    """One pool of identical worker machines."""

    name: PoolName
    replicas: Replicas = 1
    flavor: ResourceName = "m1.medium"
    image: ResourceName = DEFAULT_IMAGE

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_POOL_NAMES:
            raise _error("reserved", f"{value!r} is reserved")
        return value


class BastionSpec(_Spec):
    """The SSH jump host."""

    enabled: StrictBool = True
    flavor: ResourceName = "m1.small"  # the kube images need a 20 GB disk
    image: ResourceName = DEFAULT_IMAGE
    allowed_ssh_cidrs: list[Cidr] = Field(
        default_factory=lambda: [IPv4Network("0.0.0.0/0")], max_length=20
    )


class ApiLoadBalancerSpec(_Spec):
    """The Octavia load balancer in front of the API servers."""

    allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=50)
    extra_ports: list[Port] = Field(default_factory=list, max_length=10)
    provider: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")] | None = None

    @field_validator("extra_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        if API_PORT in value:
            raise _error("api_port", f"{API_PORT} is the API port and always present")
        _unique([str(port) for port in value], "port")
        return value


class SecurityGroupRuleSpec(_Spec):
    """An extra rule for a node security group (e.g. Calico BGP 179, VXLAN 4789)."""

    role: Literal["controlplane", "worker", "all"]
    direction: Literal["ingress", "egress"] = "ingress"
    protocol: Protocol
    port_range_min: Port | None = None
    port_range_max: Port | None = None
    remote_ip_prefix: Cidr | None = None
    remote_group: Literal["controlplane", "worker", "bastion"] | None = None
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    @field_validator("protocol")
    @classmethod
    def _protocol_number(cls, value: str) -> str:
        if value.isdigit() and int(value) > 255:
            raise _error("protocol", "must be tcp, udp, icmp or an IP protocol number 0-255")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SecurityGroupRuleSpec:
        if (self.remote_ip_prefix is None) == (self.remote_group is None):
            raise _error("remote", "exactly one of remote_ip_prefix and remote_group is required")
        has_ports = self.port_range_min is not None or self.port_range_max is not None
        if self.protocol in ("tcp", "udp"):
            if self.port_range_min is None or self.port_range_max is None:
                raise _error(
                    "ports", f"port_range_min and port_range_max required for {self.protocol}"
                )
            if self.port_range_min > self.port_range_max:
                raise _error("ports", "port_range_min must be <= port_range_max")
        elif has_ports:
            raise _error(
                "ports", f"port ranges are only allowed for tcp and udp, not {self.protocol}"
            )
        return self


class ClusterSpec(_Spec):
    """What a user sends in ``cluster.create``; see the module docstring for conventions."""

    name: ClusterName
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    cloud: CloudName
    external_network: ResourceName = "public"
    external_cidr: Cidr = IPv4Network("127.100.0.0/16")
    node_cidr: Cidr = IPv4Network("10.6.0.0/24")
    dns_nameservers: list[IPvAnyAddress] = Field(default_factory=list, max_length=5)
    control_plane: ControlPlaneSpec = Field(default_factory=ControlPlaneSpec)
    worker_pools: list[WorkerPoolSpec] = Field(default_factory=list, max_length=10)
    bastion: BastionSpec = Field(default_factory=BastionSpec)
    api_load_balancer: ApiLoadBalancerSpec = Field(default_factory=ApiLoadBalancerSpec)
    ssh_key_name: ResourceName | None = None
    extra_security_group_rules: list[SecurityGroupRuleSpec] = Field(
        default_factory=list, max_length=50
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        match = _VERSION.match(value)
        if match is None:
            raise _error("version", "must look like v1.MINOR.PATCH, e.g. v1.30.2")
        if int(match.group(1)) not in SUPPORTED_MINORS:
            first, last = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
            raise _error(
                "version", f"unsupported minor version; supported: v1.{first} to v1.{last}"
            )
        return value

    @field_validator("node_cidr")
    @classmethod
    def _node_cidr(cls, value: IPv4Network, info: ValidationInfo) -> IPv4Network:
        if value.prefixlen > 28 or value.prefixlen < 8:
            raise _error("cidr", "prefix length must be between /8 and /28")
        if value.is_link_local or value.is_multicast or value.is_unspecified:
            raise _error("cidr", "must be a unicast network outside 169.254.0.0/16")
        external = info.data.get("external_cidr")
        if external is not None and value.overlaps(external):
            raise _error("cidr", f"overlaps external_cidr {external}")
        return value

    @field_validator("dns_nameservers")
    @classmethod
    def _dns(cls, value: list[IPvAnyAddress]) -> list[IPvAnyAddress]:
        _unique([str(address) for address in value], "nameserver")
        return value

    @field_validator("worker_pools")
    @classmethod
    def _pools(cls, value: list[WorkerPoolSpec], info: ValidationInfo) -> list[WorkerPoolSpec]:
        _unique([pool.name for pool in value], "pool name")
        cluster = info.data.get("name")
        if cluster is not None:
            for pool in value:
                check_machine_name_fits(cluster, pool.name)
        return value

    @model_validator(mode="after")
    def _fits_subnet(self) -> ClusterSpec:
        # network and broadcast, router gateway, DHCP port, LB VIP and amphora ports
        usable = self.node_cidr.num_addresses - 6
        if self.machine_count() > usable:
            raise _error(
                "capacity",
                f"node_cidr {self.node_cidr} has {usable} usable addresses "
                f"for {self.machine_count()} machines",
            )
        return self

    def machine_count(self) -> int:
        """Servers this spec asks for: control plane, workers and the bastion."""
        workers = sum(pool.replicas for pool in self.worker_pools)
        return self.control_plane.replicas + workers + int(self.bastion.enabled)


def check_machine_name_fits(cluster: str, pool: str) -> None:
    """``<cluster>-<pool>-<n>`` must stay a valid hostname for n up to MAX_POOL_REPLICAS - 1."""
    longest = f"{cluster}-{pool}-{MAX_POOL_REPLICAS - 1}"
    if len(longest) > MAX_HOSTNAME:
        raise _error(
            "too_long",
            f"machine names like {longest!r} would exceed {MAX_HOSTNAME} characters; "
            "shorten the cluster or pool name",
        )
