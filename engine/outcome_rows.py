"""The rows an applied message writes besides the aggregate's state: outbox and history.

Outbox: the follow-up tasks and the state-change notifications. The processor commits them with
the new state and the relay publishes them afterwards, so each row carries its exchange, routing
key, encoded body and AMQP properties (trace headers included). History: one row per change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine import transition_telemetry as telemetry
from engine.messages.codec import encode
from engine.messages.envelope import Envelope
from engine.messages.registry import exchange_for, routing_key_for
from engine.store import HistoryEntry, OutboxMessage
from statemachines import Change, ClusterAggregate, Outcome


@dataclass(frozen=True)
class OutboxWriter:
    """Builds the outbox rows of one applied message, as ``source`` under exchange ``prefix``."""

    source: str = "clusterbus/engine"
    prefix: str = "clusterbus"

    def rows(
        self,
        envelope: Envelope,
        outcome: Outcome,
        aggregate: ClusterAggregate | None,
        trace: dict[str, str] | None = None,
    ) -> list[OutboxMessage]:
        """The emitted tasks, then one notification per change that was not ignored.

        ``trace``: the current trace headers if the caller has them already (else read here).
        """
        messages = [
            envelope.caused(emit.type, emit.data, source=self.source) for emit in outcome.emits
        ]
        if aggregate is not None and not all(change.ignored for change in outcome.changes):
            snapshot = aggregate.snapshot()  # built once: the same for every cluster change
            messages.extend(
                self._notification(envelope, change, snapshot, aggregate)
                for change in outcome.changes
                if not change.ignored
            )
        if trace is None:
            trace = telemetry.trace_headers()
        return [outbox_row(m, exchange_for(m.type, self.prefix), trace) for m in messages]

    def _notification(
        self,
        envelope: Envelope,
        change: Change,
        snapshot: dict[str, Any],
        aggregate: ClusterAggregate,
    ) -> Envelope:
        data: dict[str, Any] = {
            "cluster_id": envelope.subject,
            "from_state": change.from_state,
            "to_state": change.to_state,
            "trigger": change.trigger,
        }
        if change.kind == "machine":
            data["machine_id"] = change.id
            data["snapshot"] = machine_snapshot(aggregate, change.id)
            return envelope.caused("machine.state_changed", data, source=self.source)
        data["snapshot"] = snapshot
        return envelope.caused("cluster.state_changed", data, source=self.source)


def outbox_row(
    envelope: Envelope, exchange: str, trace: dict[str, str] | None = None
) -> OutboxMessage:
    """``envelope`` encoded for the outbox, with the catalog's routing key and the trace headers."""
    body, properties = encode(envelope)
    # The relay may publish this row much later (after a crash even): it re-parents on this.
    properties["headers"].update(telemetry.trace_headers() if trace is None else trace)
    return OutboxMessage(
        seq=None,
        message_id=envelope.id,
        exchange=exchange,
        routing_key=routing_key_for(envelope),
        body=body,
        properties=properties,
    )


def machine_snapshot(aggregate: ClusterAggregate, machine_id: str) -> dict[str, Any]:
    """One machine as the ``machine.state_changed`` notification shows it (no secrets)."""
    machine = aggregate.machines[machine_id]
    doc = machine.to_doc()
    return {
        "cluster_id": aggregate.id,
        "machine_id": machine_id,
        "role": machine.role.value,
        "pool": machine.pool,
        "index": machine.index,
        "state": machine.state.value,
        "server_id": machine.server_id,
        "address": machine.address,
        "floating_ip": machine.floating_ip,
        "failure_reason": machine.failure_reason,
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def history_rows(
    envelope: Envelope, outcome: Outcome, aggregate: ClusterAggregate | None, now: datetime
) -> list[HistoryEntry]:
    """One row per change; a message that changed no cluster state also leaves a cluster row."""
    rows: list[HistoryEntry] = []
    if not any(change.kind == "cluster" for change in outcome.changes):
        # Every applied message leaves one cluster-level history row (the audit trail).
        state = str(aggregate.state.value) if aggregate is not None else "none"
        rows.append(
            HistoryEntry(
                cluster_id=envelope.subject,
                machine_id=None,
                from_state=state,
                to_state=state,
                trigger=envelope.type,
                message_id=envelope.id,
                note="recorded without a cluster transition",
                at=now,
            )
        )
    rows.extend(
        HistoryEntry(
            cluster_id=envelope.subject,
            machine_id=change.id if change.kind == "machine" else None,
            from_state=change.from_state,
            to_state=change.to_state,
            trigger=change.trigger,
            message_id=envelope.id,
            ignored=change.ignored,
            note=change.note,
            at=now,
        )
        for change in outcome.changes
    )
    return rows
