"""The Cluster state machine: phases of one cluster, from accepted to ready or deleted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from transitions import Machine

from statemachines import scheduler, tasks
from statemachines.context import Ctx, fire
from statemachines.machine import fire_machine
from statemachines.model import MachineAggregate
from statemachines.states import DELETING, PROVISIONING, ClusterState, Cond, MachineState, Role

C = ClusterState
_PROVISIONING = [s for s in C if s in PROVISIONING]  # ordered: the diagram must be stable
_DELETING = [s for s in C if s in DELETING]
# Where cluster.retry can resume: every state a failure can come from.
RESUMABLE = [*_PROVISIONING, C.SCALING, *_DELETING]
_CREATING = [C.PROVISIONING_NETWORK, C.PROVISIONING_SECURITY_GROUPS, C.PROVISIONING_ENDPOINT]
_MACHINE_PHASES = [C.PROVISIONING_ENDPOINT, C.PROVISIONING_CONTROL_PLANE,
                   C.PROVISIONING_WORKERS, C.SCALING]  # fmt: skip
_FAIL = {"before": "remember_source"}

CLUSTER_TRANSITIONS: list[dict[str, Any]] = [
    # cluster.create: PKI and network start in parallel (pki.ensure, network.ensure).
    {"trigger": "create", "source": C.ACCEPTED, "dest": C.PROVISIONING_NETWORK,
     "after": "start_network"},
    # pki.ready: the CA material exists; the first control-plane machine waits for it.
    {"trigger": "pki_ready", "source": [*_CREATING, C.PROVISIONING_CONTROL_PLANE, C.FAILED],
     "dest": None, "after": "on_pki_ready"},
    # network.ready: network, subnet, router recorded; emits security_groups.ensure.
    {"trigger": "network_ready", "source": C.PROVISIONING_NETWORK,
     "dest": C.PROVISIONING_SECURITY_GROUPS, "after": "start_security_groups"},
    # security_groups.ready: emits loadbalancer.ensure; the bastion's server.create in parallel.
    {"trigger": "security_groups_ready", "source": C.PROVISIONING_SECURITY_GROUPS,
     "dest": C.PROVISIONING_ENDPOINT, "after": "start_endpoint"},
    # loadbalancer.created: its IDs are recorded at once (no state change).
    {"trigger": "loadbalancer_created", "source": C.PROVISIONING_ENDPOINT, "dest": None},
    # loadbalancer.ready: listener, pool, monitor and VIP floating IP recorded; endpoint known.
    {"trigger": "loadbalancer_ready", "source": C.PROVISIONING_ENDPOINT, "dest": None,
     "after": "on_endpoint_ready"},
    # (automatic) endpoint and PKI ready: the scheduler creates control-plane machine 0 (init).
    {"trigger": "endpoint_ready", "source": C.PROVISIONING_ENDPOINT,
     "dest": C.PROVISIONING_CONTROL_PLANE, "conditions": "endpoint_is_ready"},
    # (automatic) machine 0 running: workers all at once, other CP machines one at a time.
    {"trigger": "control_plane_initialized", "source": C.PROVISIONING_CONTROL_PLANE,
     "dest": C.PROVISIONING_WORKERS, "conditions": "control_plane_is_initialized"},
    # (automatic) every wanted machine running, every surplus one deleted, all conditions True.
    {"trigger": "converged", "source": [C.PROVISIONING_WORKERS, C.SCALING], "dest": C.READY,
     "conditions": "machines_converged", "after": "on_ready"},
    # cluster.scale: new replica counts; the scheduler adds and removes machines.
    {"trigger": "scale", "source": C.READY, "dest": C.SCALING, "after": "start_scaling"},
    # cluster.scale while scaling: retarget.
    {"trigger": "scale", "source": C.SCALING, "dest": None, "after": "start_scaling"},
    # network.failed (or a terminal task.failed of network.ensure).
    {"trigger": "network_failed", "source": C.PROVISIONING_NETWORK, "dest": C.FAILED,
     **_FAIL, "after": "on_network_failed"},
    # security_groups.failed.
    {"trigger": "security_groups_failed", "source": C.PROVISIONING_SECURITY_GROUPS,
     "dest": C.FAILED, **_FAIL, "after": "on_security_groups_failed"},
    # loadbalancer.failed.
    {"trigger": "loadbalancer_failed", "source": C.PROVISIONING_ENDPOINT, "dest": C.FAILED,
     **_FAIL, "after": "on_loadbalancer_failed"},
    # A machine failed (server.failed, build timeout): the cluster fails naming it.
    {"trigger": "machine_failed", "source": _MACHINE_PHASES, "dest": C.FAILED, **_FAIL,
     "after": "on_failed"},
    # A terminal task.failed of pki.ensure before the control plane got its certificates.
    {"trigger": "pki_failed", "source": [*_CREATING, C.PROVISIONING_CONTROL_PLANE],
     "dest": C.FAILED, "conditions": "pki_missing", **_FAIL, "after": "on_failed"},
    # A terminal task.failed of a delete task.
    {"trigger": "delete_failed", "source": _DELETING,
     "dest": C.FAILED, **_FAIL, "after": "on_failed"},
    # cluster.retry: back to the failed phase; re-emit its tasks, failed machines start over.
    *({"trigger": "retry", "source": C.FAILED, "dest": state,
       "conditions": f"failed_in_{state.value}", "after": "resume"} for state in RESUMABLE),
    # cluster.delete from any live state, failed and mid-creation included.
    {"trigger": "delete", "source": [C.ACCEPTED, *_PROVISIONING, C.READY, C.SCALING, C.FAILED],
     "dest": C.DELETING_MACHINES, "after": "start_delete"},
    # (automatic) every machine deleted (or dropped): emits loadbalancer.delete.
    {"trigger": "machines_deleted", "source": C.DELETING_MACHINES,
     "dest": C.DELETING_LOADBALANCER, "conditions": "machines_gone",
     "after": "start_loadbalancer_delete"},
    # loadbalancer.deleted: emits network.delete (the VIP port is gone with the LB).
    {"trigger": "loadbalancer_deleted", "source": C.DELETING_LOADBALANCER,
     "dest": C.DELETING_NETWORK, "after": "start_network_delete"},
    # network.deleted: emits security_groups.delete (no port uses them any more).
    {"trigger": "network_deleted", "source": C.DELETING_NETWORK,
     "dest": C.DELETING_SECURITY_GROUPS, "after": "start_security_groups_delete"},
    # security_groups.deleted: done; emits pki.delete.
    {"trigger": "security_groups_deleted", "source": C.DELETING_SECURITY_GROUPS,
     "dest": C.DELETED, "after": "on_deleted"},
]  # fmt: skip

# Triggers the engine fires by itself after every message, in this order, until none moves.
AUTOMATIC = ("endpoint_ready", "control_plane_initialized", "converged", "machines_deleted")


class ClusterModel:
    """The transitions model for the cluster while one message is applied."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx, self.agg = ctx, ctx.agg

    @property
    def state(self) -> ClusterState:
        return self.agg.state

    @state.setter
    def state(self, value: ClusterState) -> None:
        self.agg.state = value

    def __getattr__(self, name: str) -> Callable[[], bool]:
        # Guards of the retry rows: failed_in_<state>.
        if name.startswith("failed_in_"):
            target = ClusterState(name.removeprefix("failed_in_"))
            return lambda: self.agg.failed_from is target
        raise AttributeError(name)

    # guards
    def endpoint_is_ready(self) -> bool:
        ids = self.agg.ids
        return bool(ids["pki_ready"] and ids["endpoint"]["host"])

    def control_plane_is_initialized(self) -> bool:
        return self.agg.condition_true(Cond.CONTROL_PLANE_INITIALIZED)

    def machines_converged(self) -> bool:
        return scheduler.converged(self.agg)

    def machines_gone(self) -> bool:
        return all(m.state is MachineState.DELETED for m in self.agg.machines.values())

    def pki_missing(self) -> bool:
        return not self.agg.ids["pki_ready"]

    # creation
    def start_network(self) -> None:
        for cond in Cond:
            self.ctx.condition(cond, "Unknown", "Pending")
        self._start_pki()
        self._start("network", Cond.NETWORK_READY, "network.ensure", tasks.network_ensure)

    def _start_pki(self) -> None:
        if not self.agg.ids["pki_ready"]:
            self.ctx.emit("pki.ensure", tasks.pki_ensure(self.agg), awaited="pki")

    def _start(self, part: str, cond: Cond, task: str, build: Callable[[Any], Any]) -> None:
        self.ctx.condition(cond, "False", "Provisioning")
        self.ctx.emit(task, build(self.agg), awaited=part)

    def _done(self, part: str, cond: Cond) -> None:
        self.ctx.settle(part)
        self.ctx.condition(cond, "True", "Ready")

    def on_pki_ready(self) -> None:
        self.ctx.settle("pki")

    def start_security_groups(self) -> None:
        self._done("network", Cond.NETWORK_READY)
        self._start("security_groups", Cond.SECURITY_GROUPS_READY, "security_groups.ensure",
                    tasks.security_groups_ensure)  # fmt: skip

    def start_endpoint(self) -> None:
        self._done("security_groups", Cond.SECURITY_GROUPS_READY)
        self._start("loadbalancer", Cond.API_ENDPOINT_READY, "loadbalancer.ensure",
                    tasks.loadbalancer_ensure)  # fmt: skip

    def on_endpoint_ready(self) -> None:
        self._done("loadbalancer", Cond.API_ENDPOINT_READY)

    def on_ready(self) -> None:
        self.agg.failure_reason = None

    def start_scaling(self) -> None:
        spec = copy.deepcopy(self.agg.spec)
        sizes = self.ctx.data.get("workers") or {}
        for pool in spec.get("worker_pools") or []:
            pool["replicas"] = int(sizes.get(pool["name"], pool["replicas"]))
        if self.ctx.data.get("control_plane_replicas") is not None:
            spec["control_plane"]["replicas"] = int(self.ctx.data["control_plane_replicas"])
        self.agg.spec = spec

    # failure and retry
    def remember_source(self) -> None:
        self.agg.failed_from = self.agg.state

    def _fail(self, cond: Cond | None, reason: str, what: str) -> None:
        if cond is not None:
            self.ctx.settle(what)
            self.ctx.condition(cond, "False", reason, self.ctx.reason)
        self.agg.failure_reason = f"{what}: {self.ctx.reason}"

    def on_network_failed(self) -> None:
        self._fail(Cond.NETWORK_READY, "NetworkCreateFailed", "network")

    def on_security_groups_failed(self) -> None:
        self._fail(Cond.SECURITY_GROUPS_READY, "SecurityGroupCreateFailed", "security_groups")

    def on_loadbalancer_failed(self) -> None:
        self._fail(Cond.API_ENDPOINT_READY, "APIEndpointConfigFailed", "loadbalancer")

    def on_failed(self) -> None:
        self.agg.failure_reason = self.ctx.reason

    def resume(self) -> None:
        """Re-emit the tasks of the failed phase; failed machines go back to pending."""
        agg, state = self.agg, self.agg.state
        agg.failure_reason, agg.failed_from = None, None
        restart = {
            C.PROVISIONING_NETWORK: self.start_network_again,
            C.PROVISIONING_SECURITY_GROUPS: lambda: self._start(
                "security_groups", Cond.SECURITY_GROUPS_READY, "security_groups.ensure",
                tasks.security_groups_ensure),
            C.DELETING_LOADBALANCER: self.start_loadbalancer_delete,
            C.DELETING_NETWORK: self.start_network_delete,
            C.DELETING_SECURITY_GROUPS: self.start_security_groups_delete,
        }  # fmt: skip
        if state in restart:
            restart[state]()
        if state is C.PROVISIONING_ENDPOINT and not agg.condition_true(Cond.API_ENDPOINT_READY):
            self._start("loadbalancer", Cond.API_ENDPOINT_READY, "loadbalancer.ensure",
                        tasks.loadbalancer_ensure)  # fmt: skip
        if state not in DELETING:
            self._start_pki()
            for m in agg.machines.values():
                if m.state is MachineState.FAILED:
                    fire_machine(self.ctx, m, "retry")
        for key, awaiting in list(agg.awaiting.items()):
            if key.startswith("machine/") and awaiting.task in ("member.delete", "server.delete"):
                self.ctx.emit(awaiting.task, awaiting.data, awaited=key)

    def start_network_again(self) -> None:
        self._start("network", Cond.NETWORK_READY, "network.ensure", tasks.network_ensure)

    # deletion
    def start_delete(self) -> None:
        agg = self.agg
        agg.failure_reason, agg.failed_from = None, None
        for part in ("pki", "network", "security_groups", "loadbalancer"):
            self.ctx.settle(part)
        for cond in Cond:
            self.ctx.condition(cond, "False", "Deleting")
        for m in agg.machines.values():
            if m.state is MachineState.PENDING:
                fire_machine(self.ctx, m, "drop")
            elif m.state not in (MachineState.DELETING, MachineState.DELETED):
                fire_machine(self.ctx, m, "delete")

    def start_loadbalancer_delete(self) -> None:
        self.ctx.emit("loadbalancer.delete", tasks.loadbalancer_delete(self.agg),
                      awaited="loadbalancer")  # fmt: skip

    def start_network_delete(self) -> None:
        self.ctx.settle("loadbalancer")
        self.ctx.emit("network.delete", tasks.network_delete(self.agg), awaited="network")

    def start_security_groups_delete(self) -> None:
        self.ctx.settle("network")
        self.ctx.emit("security_groups.delete", tasks.security_groups_delete(self.agg),
                      awaited="security_groups")  # fmt: skip

    def on_deleted(self) -> None:
        self.agg.awaiting.clear()
        for cond in Cond:
            self.ctx.condition(cond, "False", "Deleted")
        self.ctx.emit("pki.delete", tasks.pki_delete(self.agg))


CLUSTER = Machine(
    model=None,
    states=ClusterState,
    transitions=CLUSTER_TRANSITIONS,
    initial=ClusterState.ACCEPTED,
    auto_transitions=False,
)


def fire_cluster(ctx: Ctx, event: str, *, report_ignored: bool = True) -> bool:
    """Fire ``event`` on the cluster of ``ctx``."""
    return fire(CLUSTER, ClusterModel(ctx), event, ctx, kind="cluster", ident=ctx.agg.id,
                report_ignored=report_ignored)  # fmt: skip


def progress(ctx: Ctx) -> None:
    """After a message: schedule machines, refresh conditions, fire automatic triggers."""
    for _ in range(50):  # bounded: each round must move something to go on
        moved = scheduler.sync_machines(ctx)
        for m in list(ctx.agg.machines.values()):
            if m.state is MachineState.PROVISIONED:
                event = "join" if m.role is Role.CONTROL_PLANE else "node_ready"
                moved |= fire_machine(ctx, m, event, report_ignored=False)
        scheduler.refresh_conditions(ctx)
        for event in AUTOMATIC:
            moved |= fire_cluster(ctx, event, report_ignored=False)
        if not moved:
            return


def fail_machine(ctx: Ctx, m: MachineAggregate, reason: str) -> None:
    """Fail a machine; the cluster fails naming the machine and the cloud's message."""
    ctx.reason = reason
    if fire_machine(ctx, m, "fail"):
        ctx.reason = f"machine {m.id} failed: {reason}"
        fire_cluster(ctx, "machine_failed", report_ignored=False)
