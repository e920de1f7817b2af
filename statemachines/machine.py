"""The Machine state machine: one server of a cluster (bastion, control plane or worker)."""

from __future__ import annotations

from typing import Any

from transitions import Machine

from statemachines import tasks
from statemachines.context import Ctx, fire
from statemachines.model import MachineAggregate
from statemachines.states import (
    BUILD_TIMEOUT_REASON,
    MACHINE_BUILD_TIMEOUT,
    MACHINE_BUSY,
    ClusterState,
    Cond,
    MachineState,
    Role,
)

M = MachineState
_FROM_CLOUD = [M.CREATING, M.BUILDING, M.PROVISIONED, M.JOINING]

MACHINE_TRANSITIONS: list[dict[str, Any]] = [
    # The scheduler asks; the guard enforces KCP's one-at-a-time rule. Emits server.create.
    {"trigger": "create", "source": M.PENDING, "dest": M.CREATING,
     "conditions": "may_create", "after": "on_create"},
    # server.building: Nova accepted it (BUILD); server_id and ports recorded; emits server.poll.
    {"trigger": "building", "source": M.CREATING, "dest": M.BUILDING, "after": "on_building"},
    # server.active: ACTIVE with an address (server.building may be lost, so from creating too).
    {"trigger": "active", "source": [M.CREATING, M.BUILDING], "dest": M.PROVISIONED,
     "after": "on_provisioned"},
    # Control plane: join the API load balancer pool; emits member.ensure.
    {"trigger": "join", "source": M.PROVISIONED, "dest": M.JOINING,
     "conditions": ["is_control_plane", "has_api_pool"], "after": "on_join"},
    # member.added: the member exists; emits member.poll until the node answers behind the LB.
    {"trigger": "member_added", "source": M.JOINING, "dest": None, "after": "on_member_added"},
    # member.online: the control-plane node serves the API.
    {"trigger": "member_online", "source": M.JOINING, "dest": M.RUNNING, "after": "on_running"},
    # Worker: running once node_ready() says so (ACTIVE in the simulator).
    {"trigger": "node_ready", "source": M.PROVISIONED, "dest": M.RUNNING,
     "conditions": ["is_worker", "node_is_ready"], "after": "on_running"},
    # floatingip.ready: the bastion is reachable.
    {"trigger": "floating_ip_ready", "source": M.PROVISIONED, "dest": M.RUNNING,
     "conditions": "is_bastion", "after": "on_running"},
    # server.failed (Nova fault / quota), a terminal task.failed, or the build timeout.
    {"trigger": "fail", "source": _FROM_CLOUD, "dest": M.FAILED, "after": "on_failed"},
    # cluster.retry: start over with a fresh server.create (the old server id is passed on).
    {"trigger": "retry", "source": M.FAILED, "dest": M.PENDING, "after": "on_retry"},
    # Removal: a control plane in the LB pool leaves it first (member.delete), else server.delete.
    {"trigger": "delete", "source": [*_FROM_CLOUD, M.RUNNING, M.FAILED], "dest": M.DELETING,
     "conditions": "may_delete", "after": "on_delete"},
    # member.deleted: now the server.
    {"trigger": "member_deleted", "source": M.DELETING, "dest": None,
     "after": "on_member_deleted"},
    # server.deleted: gone from the cloud.
    {"trigger": "deleted", "source": M.DELETING, "dest": M.DELETED, "after": "on_gone"},
    # Never sent to the cloud: nothing to delete.
    {"trigger": "drop", "source": M.PENDING, "dest": M.DELETED, "after": "on_gone"},
    # Scale-up again reuses the name (and row) of a machine deleted earlier.
    {"trigger": "recycle", "source": M.DELETED, "dest": M.PENDING, "after": "on_recycle"},
]  # fmt: skip


def node_ready(m: MachineAggregate) -> bool:
    """THE "is this node ready" decision: ACTIVE with an address is the simulator's probe.

    Replace this one function with a real Kubernetes Node Ready check (through the cluster's
    kubeconfig, in a handler that reports it) without touching the tables.
    """
    return m.address is not None


class MachineModel:
    """The transitions model for one machine while one message is applied."""

    def __init__(self, ctx: Ctx, machine: MachineAggregate) -> None:
        self.ctx, self.m = ctx, machine

    @property
    def state(self) -> MachineState:
        return self.m.state

    @state.setter
    def state(self, value: MachineState) -> None:
        self.m.state = value

    @property
    def key(self) -> str:
        return f"machine/{self.m.id}"

    # guards
    def is_control_plane(self) -> bool:
        return self.m.role is Role.CONTROL_PLANE

    def is_worker(self) -> bool:
        return self.m.role is Role.WORKER

    def is_bastion(self) -> bool:
        return self.m.role is Role.BASTION

    def node_is_ready(self) -> bool:
        return node_ready(self.m)

    def has_api_pool(self) -> bool:
        return tasks.api_pool_id(self.ctx.agg) is not None

    def _other_control_plane_busy(self) -> bool:
        busy = MACHINE_BUSY | {M.DELETING}
        return any(
            o.role is Role.CONTROL_PLANE and o.id != self.m.id and o.state in busy
            for o in self.ctx.agg.machines.values()
        )

    def may_create(self) -> bool:
        agg = self.ctx.agg
        initialized = agg.condition_true(Cond.CONTROL_PLANE_INITIALIZED)
        if self.m.role is Role.WORKER:
            return initialized
        if self.m.role is Role.BASTION:
            return True
        # kubeadm init runs once, on machine 0, behind a ready endpoint with the PKI in place.
        if not initialized and (self.m.index != 0 or not agg.ids["endpoint"]["host"]):
            return False
        return bool(agg.ids["pki_ready"]) and not self._other_control_plane_busy()

    def may_delete(self) -> bool:
        if self.ctx.agg.state is ClusterState.DELETING_MACHINES or not self.is_control_plane():
            return True
        return not self._other_control_plane_busy()  # scale-down: one etcd member at a time

    # effects
    def touch(self) -> None:
        self.m.updated_at = self.ctx.now

    def on_create(self) -> None:
        agg, m = self.ctx.agg, self.m
        if m.role is Role.CONTROL_PLANE:
            first = not agg.condition_true(Cond.CONTROL_PLANE_INITIALIZED)
            m.bootstrap = "init" if first else "join_control_plane"
        else:
            m.bootstrap = "join_worker" if m.role is Role.WORKER else "none"
        m.created_at = m.created_at or self.ctx.now
        give_up = self.ctx.now + MACHINE_BUILD_TIMEOUT
        self.ctx.emit("server.create", tasks.server_create(agg, m), awaited=self.key,
                      give_up=give_up)  # fmt: skip

    def _give_up(self) -> Any:
        awaiting = self.ctx.agg.awaiting.get(self.key)
        return awaiting.give_up if awaiting else self.ctx.now + MACHINE_BUILD_TIMEOUT

    def on_building(self) -> None:
        data = tasks.server_poll(self.ctx.agg, self.m)
        self.ctx.emit("server.poll", data, awaited=self.key, give_up=self._give_up())

    def on_provisioned(self) -> None:
        self.ctx.settle(self.key)
        if self.m.role is Role.BASTION:
            self.ctx.emit("floatingip.ensure", tasks.floatingip_ensure(self.ctx.agg, self.m),
                          awaited=self.key)  # fmt: skip

    def on_join(self) -> None:
        self.m.member_requested = True
        data = tasks.member_ensure(self.ctx.agg, self.m)
        self.ctx.emit("member.ensure", data, awaited=self.key)

    def on_member_added(self) -> None:
        self.ctx.emit("member.poll", tasks.member_poll(self.ctx.agg, self.m), awaited=self.key)

    def on_running(self) -> None:
        self.ctx.settle(self.key)
        self.m.failure_reason = None

    def on_failed(self) -> None:
        self.ctx.settle(self.key)
        self.m.failure_reason = self.ctx.reason or "failed"

    def on_retry(self) -> None:
        self.m.failure_reason = None

    def on_delete(self) -> None:
        agg, m = self.ctx.agg, self.m
        if m.role is Role.CONTROL_PLANE and m.member_requested and self.has_api_pool():
            self.ctx.emit("member.delete", tasks.member_delete(agg, m), awaited=self.key)
        else:
            self.on_member_deleted()

    def on_member_deleted(self) -> None:
        self.m.member_requested = False
        self.ctx.emit("server.delete", tasks.server_delete(self.ctx.agg, self.m),
                      awaited=self.key)  # fmt: skip

    def on_gone(self) -> None:
        self.ctx.settle(self.key)

    def on_recycle(self) -> None:
        fresh = MachineAggregate(self.m.id, self.m.role, self.m.pool, self.m.index)
        for name in ("server_id", "port_ids", "address", "floating_ip_id", "floating_ip",
                     "member_id", "member_requested", "bootstrap", "failure_reason"):  # fmt: skip
            setattr(self.m, name, getattr(fresh, name))


MACHINE = Machine(
    model=None,
    states=MachineState,
    transitions=MACHINE_TRANSITIONS,
    initial=MachineState.PENDING,
    auto_transitions=False,
    after_state_change="touch",
)


def fire_machine(ctx: Ctx, m: MachineAggregate, event: str, *, report_ignored: bool = True) -> bool:
    """Fire ``event`` on machine ``m``."""
    model = MachineModel(ctx, m)
    return fire(MACHINE, model, event, ctx, kind="machine", ident=m.id,
                report_ignored=report_ignored)  # fmt: skip


__all__ = [
    "BUILD_TIMEOUT_REASON",
    "MACHINE",
    "MACHINE_TRANSITIONS",
    "MachineModel",
    "fire_machine",
    "node_ready",
]
