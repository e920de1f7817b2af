"""The realism profile: time scale, latencies, asynchronous delays, faults, quotas.

Loaded from YAML (``clusterbus sim serve --profile FILE``) or replaced at run time through the
admin API (``PUT /_sim/profile``). All durations are in *cloud seconds*: what a real cloud
would take; ``time_scale`` converts them to wall-clock time (0.01 makes a 60 s boot 0.6 s).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Strict):
    """A latency distribution in cloud seconds."""

    dist: Literal["constant", "uniform", "lognormal"] = "constant"
    value: float = Field(0.0, ge=0)  # constant
    low: float = Field(0.0, ge=0)  # uniform
    high: float = Field(0.0, ge=0)
    mu: float = 0.0  # lognormal: exp(N(mu, sigma)) seconds
    sigma: float = Field(0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        if self.dist == "uniform":
            return rng.uniform(self.low, max(self.low, self.high))
        if self.dist == "lognormal":
            return rng.lognormvariate(self.mu, self.sigma)
        return self.value


class Delays(_Strict):
    """How long asynchronous work takes, in cloud seconds."""

    server_boot: float = Field(30.0, ge=0, description="BUILD -> ACTIVE")
    server_delete: float = Field(5.0, ge=0, description="deleting -> gone")
    lb_create: float = Field(60.0, ge=0, description="load balancer PENDING_CREATE -> ACTIVE")
    lb_update: float = Field(5.0, ge=0, description="PENDING_UPDATE -> ACTIVE after a child change")
    lb_delete: float = Field(10.0, ge=0, description="PENDING_DELETE -> gone")
    member_online: float = Field(
        10.0, ge=0, description="member OFFLINE -> ONLINE once its server is ACTIVE"
    )
    fip_active: float = Field(0.0, ge=0, description="floating IP DOWN -> ACTIVE after association")


class ErrorFault(_Strict):
    """Answer requests whose operation key matches ``match`` (fnmatch) with an error."""

    match: str = Field(description="operation key pattern, e.g. 'compute.servers.*' or '*'")
    rate: float = Field(ge=0, le=1)
    kind: Literal["http_500", "http_503", "reset"] = "http_500"


class ServerFault(_Strict):
    """Servers whose name matches ``name_regex`` end in ERROR with ``message`` (Nova's fault)."""

    name_regex: str = ".*"
    rate: float = Field(1.0, ge=0, le=1)
    message: str = "No valid host was found. There are not enough hosts available."
    code: int = 500


class StuckLoadBalancer(_Strict):
    """Load balancers whose name matches stay PENDING_UPDATE for ``seconds`` after each change."""

    name_regex: str = ".*"
    seconds: float = Field(120.0, ge=0)


class Faults(_Strict):
    errors: list[ErrorFault] = Field(default_factory=list)
    server_errors: list[ServerFault] = Field(default_factory=list)
    stuck_load_balancers: list[StuckLoadBalancer] = Field(default_factory=list)
    slow_delete_factor: float = Field(1.0, ge=0, description="multiplies every delete delay")


class Quota(_Strict):
    """Per-project limits; -1 means unlimited."""

    instances: int = 50
    cores: int = 200
    ram: int = 512_000  # MiB
    floatingip: int = 50
    network: int = 100
    subnet: int = 100
    router: int = 20
    port: int = 500
    security_group: int = 50
    security_group_rule: int = 1000
    loadbalancer: int = 20


class ProjectSpec(_Strict):
    name: str
    user: str
    password: str
    quota: Quota = Field(default_factory=Quota)


class Profile(_Strict):
    """The whole realism profile."""

    time_scale: float = Field(1.0, gt=0)
    seed: int | None = None
    latency: dict[str, Latency] = Field(
        default_factory=dict, description="operation key pattern -> latency ('*' = default)"
    )
    delays: Delays = Field(default_factory=Delays)
    faults: Faults = Field(default_factory=Faults)
    external_network_name: str = "public"
    external_cidr: str = "127.100.0.0/16"
    projects: list[ProjectSpec] = Field(
        default_factory=lambda: [
            ProjectSpec(name="demo", user="demo", password="demo-password"),
            ProjectSpec(name="alt", user="alt", password="alt-password"),
        ]
    )

    @classmethod
    def from_yaml(cls, path: Path) -> Profile:
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})
