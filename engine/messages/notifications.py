"""Notifications (exchange clusterbus.notifications): engine -> world after each transition.

Routing key ``<type>.<to_state>.<cluster_id>`` (see ``routing_key``) so consumers bind by kind,
state or cluster, e.g. ``cluster.state_changed.ready.*`` or ``*.*.*.demo``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from engine.messages.common import (
    ClusterId,
    ClusterSnapshot,
    ClusterState,
    MachineId,
    MachineSnapshot,
    MachineState,
    Message,
)


class Notification(Message):
    cluster_id: ClusterId
    trigger: str = Field(min_length=1, max_length=128)

    def routing_key(self) -> str:
        """Where this notification is published: type, new state and cluster."""
        raise NotImplementedError


class ClusterStateChanged(Notification):
    """``from_state`` is None when the cluster was just created."""

    TYPE: ClassVar[str] = "cluster.state_changed"
    from_state: ClusterState | None = None
    to_state: ClusterState
    snapshot: ClusterSnapshot

    def routing_key(self) -> str:
        return f"{self.TYPE}.{self.to_state.value}.{self.cluster_id}"


class MachineStateChanged(Notification):
    TYPE: ClassVar[str] = "machine.state_changed"
    machine_id: MachineId
    from_state: MachineState | None = None
    to_state: MachineState
    snapshot: MachineSnapshot

    def routing_key(self) -> str:
        return f"{self.TYPE}.{self.to_state.value}.{self.cluster_id}"


NOTIFICATIONS: tuple[type[Message], ...] = (ClusterStateChanged, MachineStateChanged)
