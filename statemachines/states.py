"""The vocabulary of both state machines: states, roles, conditions and timing constants.

The message contract (engine.messages.common) reuses these enums, so a state named in a
notification is always one the machines know.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class ClusterState(StrEnum):
    ACCEPTED = "accepted"
    PROVISIONING_NETWORK = "provisioning_network"
    PROVISIONING_SECURITY_GROUPS = "provisioning_security_groups"
    PROVISIONING_ENDPOINT = "provisioning_endpoint"
    PROVISIONING_CONTROL_PLANE = "provisioning_control_plane"
    PROVISIONING_WORKERS = "provisioning_workers"
    READY = "ready"
    SCALING = "scaling"
    DELETING_MACHINES = "deleting_machines"
    DELETING_LOADBALANCER = "deleting_loadbalancer"
    DELETING_NETWORK = "deleting_network"
    DELETING_SECURITY_GROUPS = "deleting_security_groups"
    DELETED = "deleted"
    FAILED = "failed"


class MachineState(StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    BUILDING = "building"
    PROVISIONED = "provisioned"
    JOINING = "joining"
    RUNNING = "running"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


class Role(StrEnum):
    CONTROL_PLANE = "control_plane"
    WORKER = "worker"
    BASTION = "bastion"


class Bootstrap(StrEnum):
    INIT = "init"
    JOIN_CONTROL_PLANE = "join_control_plane"
    JOIN_WORKER = "join_worker"
    NONE = "none"


class Cond(StrEnum):
    """Cluster-API style condition types of a cluster."""

    NETWORK_READY = "NetworkReady"
    SECURITY_GROUPS_READY = "SecurityGroupsReady"
    API_ENDPOINT_READY = "APIEndpointReady"
    BASTION_READY = "BastionReady"
    CONTROL_PLANE_INITIALIZED = "ControlPlaneInitialized"
    CONTROL_PLANE_READY = "ControlPlaneReady"
    WORKERS_READY = "WorkersReady"


PROVISIONING: frozenset[ClusterState] = frozenset(
    {
        ClusterState.PROVISIONING_NETWORK,
        ClusterState.PROVISIONING_SECURITY_GROUPS,
        ClusterState.PROVISIONING_ENDPOINT,
        ClusterState.PROVISIONING_CONTROL_PLANE,
        ClusterState.PROVISIONING_WORKERS,
    }
)
DELETING: frozenset[ClusterState] = frozenset(
    {
        ClusterState.DELETING_MACHINES,
        ClusterState.DELETING_LOADBALANCER,
        ClusterState.DELETING_NETWORK,
        ClusterState.DELETING_SECURITY_GROUPS,
    }
)
# A control-plane machine in one of these is "in flight": KCP's one-operation-at-a-time rule.
MACHINE_BUSY: frozenset[MachineState] = frozenset(
    {MachineState.CREATING, MachineState.BUILDING, MachineState.PROVISIONED, MachineState.JOINING}
)
# A machine that may own a server in the cloud (so deleting it needs a server.delete).
MACHINE_LIVE: frozenset[MachineState] = MACHINE_BUSY | {
    MachineState.RUNNING,
    MachineState.DELETING,
    MachineState.FAILED,
}

API_PORT = 6443
# Re-emit an awaited task when its event is this late (the reconciler's tick checks).
DEFAULT_REEMIT = timedelta(seconds=120)
# Slow parts poll themselves through delay queues; re-emitting too early starts a second chain.
REEMIT_BY_TASK: dict[str, timedelta] = {
    "loadbalancer.ensure": timedelta(seconds=600),
    "server.poll": timedelta(seconds=300),
    "member.poll": timedelta(seconds=300),
}
# A server not ACTIVE this long after server.create fails its machine (like nodeStartupTimeout).
MACHINE_BUILD_TIMEOUT = timedelta(minutes=15)
BUILD_TIMEOUT_REASON = "timed out waiting for server ACTIVE"
