"""The reconciler's tick: re-emit overdue tasks, time out machines that never became ACTIVE."""

from __future__ import annotations

from statemachines.cluster import fail_machine
from statemachines.context import Ctx, ignore
from statemachines.model import Change, Emit
from statemachines.states import BUILD_TIMEOUT_REASON, DEFAULT_REEMIT, REEMIT_BY_TASK


def reconcile(ctx: Ctx) -> None:
    """For every awaited answer that is late: re-emit its task, or give up on the machine."""
    agg, reemitted = ctx.agg, 0
    for key, awaiting in sorted(agg.awaiting.items()):
        if awaiting.give_up is not None and ctx.now >= awaiting.give_up:
            _time_out(ctx, key)
        elif ctx.now >= awaiting.deadline:
            ctx.outcome.emits.append(Emit(awaiting.task, dict(awaiting.data)))
            interval = REEMIT_BY_TASK.get(awaiting.task, DEFAULT_REEMIT)
            awaiting.deadline = ctx.now + interval
            awaiting.reemits += 1
            reemitted += 1
    state = agg.state.value
    if reemitted:
        note = f"re-emitted {reemitted} overdue task(s)"
        ctx.outcome.changes.append(Change("cluster", agg.id, state, state, ctx.trigger, note=note))
    elif not ctx.outcome.changes:
        ignore(ctx, "cluster", agg.id, state, "nothing overdue")


def _time_out(ctx: Ctx, key: str) -> None:
    ctx.agg.awaiting.pop(key, None)
    m = ctx.agg.machines.get(key.removeprefix("machine/"))
    if m is not None:
        fail_machine(ctx, m, BUILD_TIMEOUT_REASON)
