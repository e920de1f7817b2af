"""The per-message context: what a transition may read and the effects it records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from transitions import Machine

from statemachines.model import (
    Awaiting,
    Change,
    ClusterAggregate,
    Condition,
    Emit,
    Json,
    Outcome,
)
from statemachines.states import DEFAULT_REEMIT, REEMIT_BY_TASK, Cond


@dataclass
class Ctx:
    """One message being applied to one aggregate."""

    agg: ClusterAggregate
    now: datetime
    trigger: str  # the message type, as reported in every Change
    data: Json = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    reason: str = ""  # the failure text a *_failed transition records

    def emit(
        self, task: str, data: Json, *, awaited: str | None = None, give_up: datetime | None = None
    ) -> None:
        """Publish ``task``; if ``awaited`` names a part, remember it for the reconciler."""
        self.outcome.emits.append(Emit(task, data))
        if awaited is not None:
            interval = REEMIT_BY_TASK.get(task, DEFAULT_REEMIT)
            self.agg.awaiting[awaited] = Awaiting(
                task, data, since=self.now, deadline=self.now + interval, give_up=give_up
            )

    def settle(self, awaited: str) -> None:
        """The answer for ``awaited`` arrived (or no longer matters)."""
        self.agg.awaiting.pop(awaited, None)

    def condition(self, name: Cond, status: Status, reason: str, message: str = "") -> None:
        """Set a condition; ``last_transition`` moves only when the status changes (CAPI rule)."""
        old = self.agg.conditions.get(name.value)
        moved = old is None or old.status != status
        since = self.now if moved or old is None else old.last_transition
        self.agg.conditions[name.value] = Condition(status, reason, message, since)


Status = Literal["True", "False", "Unknown"]
Kind = Literal["cluster", "machine"]


class Stateful(Protocol):
    state: Any


def fire(
    machine: Machine,
    model: Stateful,
    event: str,
    ctx: Ctx,
    *,
    kind: Kind,
    ident: str,
    report_ignored: bool = True,
) -> bool:
    """Fire ``event`` on ``model``; record a Change (or an ignored one); never raise."""
    before = model.state
    transitions = machine.events[event].transitions
    ok = before.name in transitions and bool(machine.events[event].trigger(model))
    after = model.state
    if ok:
        ctx.outcome.changes.append(
            Change(kind, ident, before.value, after.value, ctx.trigger, note=event)
        )
    elif report_ignored:
        note = f"{event} not valid in state {before.value}"
        ctx.outcome.changes.append(
            Change(kind, ident, before.value, before.value, ctx.trigger, ignored=True, note=note)
        )
    return ok


def ignore(ctx: Ctx, kind: Kind, ident: str, state: str, note: str) -> None:
    """Record that the message changed nothing."""
    ctx.outcome.changes.append(Change(kind, ident, state, state, ctx.trigger, True, note))
