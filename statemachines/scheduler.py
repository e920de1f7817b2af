"""Which machines a cluster wants now, creating and removing them within the rules.

Like Cluster API's MachineSet (workers: all at once) and KubeadmControlPlane (one at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from statemachines.context import Ctx
from statemachines.machine import fire_machine
from statemachines.model import ClusterAggregate, MachineAggregate
from statemachines.states import ClusterState, Cond, MachineState, Role
from statemachines.tasks import bastion_enabled

C, M = ClusterState, MachineState
_ALL_PHASES = {C.PROVISIONING_WORKERS, C.SCALING, C.READY}
SCHEDULING = {C.PROVISIONING_ENDPOINT, C.PROVISIONING_CONTROL_PLANE, *_ALL_PHASES} - {C.READY}
_REFRESH = SCHEDULING | {C.READY, C.FAILED}


@dataclass(frozen=True)
class Want:
    id: str
    role: Role
    pool: str | None
    index: int


def desired(agg: ClusterAggregate) -> list[Want]:
    """Every machine the spec asks for, in creation order."""
    spec = agg.spec
    pools = tuple((p["name"], int(p["replicas"])) for p in spec.get("worker_pools") or [])
    cp = int(spec["control_plane"]["replicas"])
    return list(_desired(agg.id, bastion_enabled(spec), cp, pools))


@lru_cache(maxsize=1024)  # called several times per message; big pools made it the hot spot
def _desired(
    name: str, bastion: bool, replicas: int, pools: tuple[tuple[str, int], ...]
) -> tuple[Want, ...]:
    wants = [Want(f"{name}-bastion", Role.BASTION, None, 0)] if bastion else []
    cp = Role.CONTROL_PLANE
    wants += [Want(f"{name}-control-plane-{i}", cp, None, i) for i in range(replicas)]
    for pool, size in pools:
        wants += [Want(f"{name}-{pool}-{i}", Role.WORKER, pool, i) for i in range(size)]
    return tuple(wants)


def _phase_wants(agg: ClusterAggregate) -> list[Want]:
    """The part of ``desired`` this phase may start: bastion, then CP 0, then everything."""
    wants = desired(agg)
    if agg.state in _ALL_PHASES:
        return wants
    first_cp = [w for w in wants if w.role is Role.CONTROL_PLANE and w.index == 0]
    bastion = [w for w in wants if w.role is Role.BASTION]
    return bastion + first_cp if agg.state is C.PROVISIONING_CONTROL_PLANE else bastion


def sync_machines(ctx: Ctx) -> bool:
    """Add, create and remove machines toward the spec; True if anything moved."""
    agg = ctx.agg
    if agg.state not in SCHEDULING:
        return False
    moved = False
    for want in _phase_wants(agg):
        m = agg.machines.get(want.id)
        if m is None:
            agg.machines[want.id] = MachineAggregate(want.id, want.role, want.pool, want.index)
        elif m.state is M.DELETED:
            moved |= fire_machine(ctx, m, "recycle")
    moved |= _create_pending(ctx)
    moved |= _remove_surplus(ctx)
    return moved


def _create_pending(ctx: Ctx) -> bool:
    agg, moved = ctx.agg, False
    wanted = {w.id for w in _phase_wants(agg)}
    pending = [m for m in agg.machines.values() if m.state is M.PENDING and m.id in wanted]
    first_cp = min((m.index for m in pending if m.role is Role.CONTROL_PLANE), default=None)
    for m in pending:
        if m.role is Role.CONTROL_PLANE and m.index != first_cp:
            continue  # control plane strictly in index order
        moved |= fire_machine(ctx, m, "create", report_ignored=False)
    return moved


def _remove_surplus(ctx: Ctx) -> bool:
    agg, moved = ctx.agg, False
    wanted = {w.id for w in desired(agg)}
    surplus = sorted(
        (m for m in agg.machines.values() if m.id not in wanted), key=lambda m: -m.index
    )
    cps = [m for m in surplus if m.role is Role.CONTROL_PLANE]
    for m in surplus:
        if m.state is M.PENDING:
            moved |= fire_machine(ctx, m, "drop")
        elif m.state not in (M.DELETING, M.DELETED) and m.role is not Role.CONTROL_PLANE:
            moved |= fire_machine(ctx, m, "delete")
    # Control plane: highest index first, one etcd member at a time (the guard waits).
    live = [m for m in cps if m.state not in (M.PENDING, M.DELETING, M.DELETED)]
    if live:
        moved |= fire_machine(ctx, live[0], "delete", report_ignored=False)
    return moved


def _role_ready(agg: ClusterAggregate, role: Role) -> tuple[bool, str]:
    """(all wanted machines of ``role`` running and no surplus left, reason if not)."""
    wanted = {w.id for w in desired(agg) if w.role is role}
    mine = [m for m in agg.machines.values() if m.role is role]
    if any(m.state is M.FAILED for m in mine):
        return False, "MachineFailed"
    if any(m.id not in wanted and m.state is not M.DELETED for m in mine):
        return False, "ScalingDown"
    running = {m.id for m in mine if m.state is M.RUNNING}
    if wanted <= running:
        return True, "Ready"
    return False, "ScalingUp" if agg.state is C.SCALING else "Provisioning"


def _failure(agg: ClusterAggregate, role: Role) -> str:
    return "; ".join(
        f"{m.id}: {m.failure_reason}"
        for m in agg.machines.values()
        if m.role is role and m.state is M.FAILED
    )


def refresh_conditions(ctx: Ctx) -> None:
    """Derive the machine-backed conditions from the machines (not while deleting)."""
    agg = ctx.agg
    if agg.state not in _REFRESH or (agg.state is C.FAILED and agg.failed_from not in SCHEDULING):
        return
    for cond, role in (
        (Cond.BASTION_READY, Role.BASTION),
        (Cond.CONTROL_PLANE_READY, Role.CONTROL_PLANE),
        (Cond.WORKERS_READY, Role.WORKER),
    ):
        if cond is Cond.BASTION_READY and not bastion_enabled(agg.spec):
            ctx.condition(cond, "True", "BastionDisabled")
            continue
        ok, reason = _role_ready(agg, role)
        ctx.condition(cond, "True" if ok else "False", reason, _failure(agg, role))
    cps = [m for m in agg.machines.values() if m.role is Role.CONTROL_PLANE]
    if any(m.state is M.RUNNING for m in cps):
        ctx.condition(Cond.CONTROL_PLANE_INITIALIZED, "True", "Initialized")
    elif not agg.condition_true(Cond.CONTROL_PLANE_INITIALIZED):
        ctx.condition(Cond.CONTROL_PLANE_INITIALIZED, "False", "WaitingForControlPlane")


def converged(agg: ClusterAggregate) -> bool:
    """Every wanted machine running, every other one gone, and every condition True."""
    wanted = {w.id for w in desired(agg)}
    for m in agg.machines.values():
        if m.state is not (M.RUNNING if m.id in wanted else M.DELETED):
            return False
    present = {m.id for m in agg.machines.values()}
    return wanted <= present and all(c.status == "True" for c in agg.conditions.values())
