"""``handle``: apply one message (command, handler event or reconcile tick) to one aggregate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from statemachines import tasks
from statemachines.cluster import fail_machine, fire_cluster, progress
from statemachines.context import Ctx, ignore
from statemachines.machine import fire_machine
from statemachines.model import Change, ClusterAggregate, Condition, Json, Outcome
from statemachines.reconcile import reconcile
from statemachines.recording import LATE_PART_EVENTS, record_cluster_ids, record_machine_ids
from statemachines.states import ClusterState, Cond, MachineState

C, M = ClusterState, MachineState

# Part events: message type -> cluster trigger.
_CLUSTER_EVENTS: dict[str, str] = {
    "cluster.delete": "delete",
    "cluster.scale": "scale",
    "cluster.retry": "retry",
    "pki.ready": "pki_ready",
    "network.ready": "network_ready",
    "network.failed": "network_failed",
    "network.deleted": "network_deleted",
    "security_groups.ready": "security_groups_ready",
    "security_groups.failed": "security_groups_failed",
    "security_groups.deleted": "security_groups_deleted",
    "loadbalancer.created": "loadbalancer_created",
    "loadbalancer.ready": "loadbalancer_ready",
    "loadbalancer.failed": "loadbalancer_failed",
    "loadbalancer.deleted": "loadbalancer_deleted",
}
# Machine events: message type -> machine trigger.
_MACHINE_EVENTS: dict[str, str] = {
    "server.building": "building",
    "server.active": "active",
    "server.failed": "fail",
    "server.deleted": "deleted",
    "floatingip.ready": "floating_ip_ready",
    "member.added": "member_added",
    "member.online": "member_online",
    "member.deleted": "member_deleted",
}
# A terminal task.failed: which cluster trigger the failed task stands for.
_TASK_FAILURES: dict[str, str] = {
    "pki.ensure": "pki_failed",
    "network.ensure": "network_failed",
    "security_groups.ensure": "security_groups_failed",
    "loadbalancer.ensure": "loadbalancer_failed",
    "loadbalancer.delete": "delete_failed",
    "network.delete": "delete_failed",
    "security_groups.delete": "delete_failed",
    "server.delete": "delete_failed",
    "member.delete": "delete_failed",
}
_OTHER = ("cluster.create", "cluster.reconcile", "task.failed", "pki.deleted")
MESSAGE_TYPES: frozenset[str] = frozenset([*_CLUSTER_EVENTS, *_MACHINE_EVENTS, *_OTHER])


def handle(
    aggregate: ClusterAggregate | None, message_type: str, data: Json, *, now: datetime
) -> tuple[ClusterAggregate | None, Outcome]:
    """Apply one message; mutates and returns the aggregate with the tasks to emit.

    Messages that are not valid now (late, duplicate, unknown machine) come back as ignored
    Changes; only an unknown message type raises ValueError.
    """
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {message_type!r}")
    if message_type == "cluster.create":
        return _create(aggregate, data, now)
    if aggregate is None:
        ident = str(data.get("cluster_id") or "")
        change = Change("cluster", ident, "none", "none", message_type, True, "unknown cluster")
        return None, Outcome(changes=[change])
    ctx = Ctx(aggregate, now, message_type, data, reason=str(data.get("reason") or ""))
    _dispatch(ctx)
    progress(ctx)
    _stamp(ctx)
    return aggregate, ctx.outcome


def _create(
    aggregate: ClusterAggregate | None, data: Json, now: datetime
) -> tuple[ClusterAggregate | None, Outcome]:
    spec = data["spec"]
    if aggregate is not None and aggregate.state is not C.DELETED:
        outcome = Outcome()
        ctx = Ctx(aggregate, now, "cluster.create", data, outcome)
        ignore(ctx, "cluster", aggregate.id, aggregate.state.value, "cluster exists")
        return aggregate, outcome
    agg = ClusterAggregate(id=spec["name"], state=C.ACCEPTED, spec=spec, created_at=now)
    agg.conditions = {c.value: Condition("Unknown", "Pending", "", now) for c in Cond}
    ctx = Ctx(agg, now, "cluster.create", data)
    fire_cluster(ctx, "create")
    progress(ctx)
    _stamp(ctx)
    agg.timings.setdefault(C.ACCEPTED.value, now.isoformat())
    return agg, ctx.outcome


def _stamp(ctx: Ctx) -> None:
    agg = ctx.agg
    agg.updated_at = ctx.now
    for change in ctx.outcome.changes:
        if change.kind == "cluster" and not change.ignored:
            agg.timings.setdefault(change.to_state, ctx.now.isoformat())


def _dispatch(ctx: Ctx) -> None:
    kind = ctx.trigger
    if kind == "cluster.reconcile":
        reconcile(ctx)
    elif kind == "task.failed":
        _task_failed(ctx)
    elif kind == "pki.deleted":
        ignore(ctx, "cluster", ctx.agg.id, ctx.agg.state.value, "nothing to do")
    elif kind in _MACHINE_EVENTS:
        _machine_event(ctx, _MACHINE_EVENTS[kind])
    else:
        _cluster_event(ctx, _CLUSTER_EVENTS[kind])


def _cluster_event(ctx: Ctx, trigger: str) -> None:
    record_cluster_ids(ctx)
    if not fire_cluster(ctx, trigger) and ctx.trigger in LATE_PART_EVENTS:
        _delete_late_part(ctx, *LATE_PART_EVENTS[ctx.trigger])


_DELETE_ORDER = [C.DELETING_MACHINES, C.DELETING_LOADBALANCER, C.DELETING_NETWORK,
                 C.DELETING_SECURITY_GROUPS, C.DELETED]  # fmt: skip
_DELETE_TASKS: dict[str, tuple[ClusterState, Callable[[ClusterAggregate], Json]]] = {
    "loadbalancer.delete": (C.DELETING_LOADBALANCER, tasks.loadbalancer_delete),
    "network.delete": (C.DELETING_NETWORK, tasks.network_delete),
    "security_groups.delete": (C.DELETING_SECURITY_GROUPS, tasks.security_groups_delete),
}


def _delete_late_part(ctx: Ctx, part: str, task: str) -> None:
    """A part reported created after its delete was sent: delete it again (no leak)."""
    phase, build = _DELETE_TASKS[task]
    state = ctx.agg.state
    if state not in _DELETE_ORDER or _DELETE_ORDER.index(state) < _DELETE_ORDER.index(phase):
        return
    ctx.emit(task, build(ctx.agg), awaited=part if state is phase else None)


def _machine_event(ctx: Ctx, trigger: str) -> None:
    machine_id = str(ctx.data.get("machine_id") or "")
    m = ctx.agg.machines.get(machine_id)
    if m is None:
        ignore(ctx, "machine", machine_id, "none", "unknown machine")
        return
    learned = record_machine_ids(m, ctx.data)
    if trigger == "fail":
        fail_machine(ctx, m, ctx.reason)
    elif not fire_machine(ctx, m, trigger) and learned and m.state in (M.DELETING, M.DELETED):
        # The server (or its floating IP) showed up after we asked to delete it: ask again.
        awaiting = ctx.agg.awaiting.get(f"machine/{m.id}")
        if m.state is M.DELETED or (awaiting is not None and awaiting.task == "server.delete"):
            key = f"machine/{m.id}" if m.state is M.DELETING else None
            ctx.emit("server.delete", tasks.server_delete(ctx.agg, m), awaited=key)


def _task_failed(ctx: Ctx) -> None:
    task_type = str(ctx.data.get("task_type") or "")
    reason = f"{task_type}: {ctx.reason}"
    if not ctx.data.get("terminal"):
        note = f"transient, the handler retries: {reason}"
        ignore(ctx, "cluster", ctx.agg.id, ctx.agg.state.value, note)
        return
    machine_id = ctx.data.get("machine_id")
    m = ctx.agg.machines.get(str(machine_id)) if machine_id else None
    if m is not None and task_type not in ("server.delete", "member.delete"):
        if m.state in (M.CREATING, M.BUILDING, M.PROVISIONED, M.JOINING):
            fail_machine(ctx, m, reason)
        else:
            ignore(ctx, "machine", m.id, m.state.value, f"late failure: {reason}")
        return
    trigger = _TASK_FAILURES.get(task_type)
    if trigger is None:
        ignore(ctx, "cluster", ctx.agg.id, ctx.agg.state.value, f"no part for {reason}")
        return
    ctx.reason = reason
    fire_cluster(ctx, trigger)
