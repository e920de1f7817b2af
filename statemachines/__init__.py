"""The pure Cluster and Machine state machines of clusterbus (no I/O).

``handle(aggregate, message_type, data, now=...)`` applies one message and returns the aggregate
and an ``Outcome``: the tasks to publish (``Emit``) and the state changes (``Change``).
"""

from statemachines.handle import MESSAGE_TYPES, handle
from statemachines.machine import node_ready
from statemachines.model import (
    Awaiting,
    Change,
    ClusterAggregate,
    Condition,
    Emit,
    MachineAggregate,
    Outcome,
)
from statemachines.states import Bootstrap, ClusterState, Cond, MachineState, Role

__all__ = [
    "MESSAGE_TYPES",
    "Awaiting",
    "Bootstrap",
    "Change",
    "ClusterAggregate",
    "ClusterState",
    "Cond",
    "Condition",
    "Emit",
    "MachineAggregate",
    "MachineState",
    "Outcome",
    "Role",
    "handle",
    "node_ready",
]
