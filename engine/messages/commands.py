"""Commands (exchange clusterbus.commands): imperative requests from users and services.

The cluster id travels as the envelope's ``subject``; commands carry no ``cluster_id`` of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from engine.messages.common import Message
from engine.messages.spec import ClusterSpec, ControlPlaneReplicas, PoolName, Replicas, check_odd


class CreateCluster(Message):
    """Provision a new cluster from its spec."""

    TYPE: ClassVar[str] = "cluster.create"
    spec: ClusterSpec


class DeleteCluster(Message):
    """Delete a cluster and every resource it owns, from any state."""

    TYPE: ClassVar[str] = "cluster.delete"


class ScaleCluster(Message):
    """Change worker pool sizes and/or the control-plane size of a ready cluster."""

    TYPE: ClassVar[str] = "cluster.scale"
    workers: dict[PoolName, Replicas] = Field(default_factory=dict, max_length=10)
    control_plane_replicas: ControlPlaneReplicas | None = None

    @field_validator("control_plane_replicas")
    @classmethod
    def _odd(cls, value: int | None) -> int | None:
        return check_odd(value)

    @model_validator(mode="after")
    def _something(self) -> ScaleCluster:
        if not self.workers and self.control_plane_replicas is None:
            raise ValueError("nothing to scale: give workers and/or control_plane_replicas")
        return self


class RetryCluster(Message):
    """Resume a failed cluster from the part that failed."""

    TYPE: ClassVar[str] = "cluster.retry"


class ReconcileCluster(Message):
    """Reconciler tick: re-emit tasks whose awaited event is overdue (internal)."""

    TYPE: ClassVar[str] = "cluster.reconcile"
    now: datetime


COMMANDS: tuple[type[Message], ...] = (
    CreateCluster,
    DeleteCluster,
    ScaleCluster,
    RetryCluster,
    ReconcileCluster,
)
