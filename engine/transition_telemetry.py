"""Spans, metrics and log lines of the engine's transitions (kept out of the Processor's logic).

Per applied message: an ``apply {type}`` span (the child of the delivery's CONSUMER span) and
inside it one ``transition {kind}`` span per state change. The outbox rows built inside the apply
span carry its context in their headers, so whoever publishes them later stays in the trace.
Metrics and log lines are written only for what was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context

from engine.bus.telemetry import current_headers, extract, tracing_enabled
from engine.logs import bound
from engine.messages.envelope import Envelope
from engine.metrics import STALE_EVENTS, TIME_TO_READY, TRANSITIONS
from statemachines import ClusterAggregate, Outcome

log = logging.getLogger("engine.transitions")
tracer = trace.get_tracer("clusterbus.engine")

TRACEPARENT_KEY = "traceparent"  # in the cluster doc: the trace its creation belongs to
READY = "ready"  # reached from accepted/provisioning_* = the end of a creation (not a scale)


@contextmanager
def apply_span(envelope: Envelope, context: Context | None) -> Iterator[Context | None]:
    """The span of one message being applied to its aggregate.

    Yields the context to read the outbox rows' trace headers from (``trace_headers``): the
    new span's (None, the current one) or, with tracing off, the delivery's as it came.
    """
    if not tracing_enabled():
        yield context  # no span to record, and the headers carry on what the delivery had
        return
    with tracer.start_as_current_span(
        f"apply {envelope.type}",
        context=context,
        attributes={
            "cluster.id": envelope.subject,
            "messaging.message.id": envelope.id,
            "clusterbus.trigger": envelope.type,
        },
        record_exception=False,
    ):
        yield None


def transition_spans(outcome: Outcome) -> None:
    """One short span per state change of ``outcome`` (under the current apply span)."""
    if not tracing_enabled():
        return  # no-op spans: nothing to record, nothing observable
    for change in outcome.changes:
        attributes: dict[str, Any] = {
            "cluster.id": change.id if change.kind == "cluster" else "",
            "clusterbus.kind": change.kind,
            "clusterbus.from_state": change.from_state,
            "clusterbus.to_state": change.to_state,
            "clusterbus.trigger": change.trigger,
            "clusterbus.ignored": change.ignored,
        }
        if change.kind == "machine":
            attributes["machine.id"] = change.id
            del attributes["cluster.id"]
        with tracer.start_as_current_span(f"transition {change.kind}", attributes=attributes):
            pass


def trace_headers(context: Context | None = None) -> dict[str, str]:
    """The context (default: the current one) as AMQP headers, for an outbox row built now."""
    return current_headers(context)


def root_traceparent(stored: str | None, current: dict[str, str] | None = None) -> str | None:
    """The cluster's trace: kept once set, else the current one (the creation's).

    ``current``: the current trace headers if the caller has them already.
    """
    if stored:
        return stored
    return (current_headers() if current is None else current).get(TRACEPARENT_KEY)


def link_context(doc: dict[str, Any]) -> Context | None:
    """The context stored in a cluster doc, for a link from a new trace (the reconciler)."""
    traceparent = doc.get(TRACEPARENT_KEY)
    return extract({TRACEPARENT_KEY: traceparent}) if isinstance(traceparent, str) else None


def committed(
    envelope: Envelope, outcome: Outcome, aggregate: ClusterAggregate | None, now: datetime
) -> None:
    """Metrics and one log line per change of a committed message."""
    if not outcome.changes:
        return
    with bound(cluster_id=envelope.subject, message_id=envelope.id):
        for change in outcome.changes:
            if change.ignored:
                STALE_EVENTS.labels(kind=change.kind, trigger=change.trigger).inc()
            else:
                TRANSITIONS.labels(change.kind, change.from_state, change.to_state).inc()
            log.info(
                "transition",
                extra={
                    "kind": change.kind,
                    "machine_id": change.id if change.kind == "machine" else None,
                    "from_state": change.from_state,
                    "to_state": change.to_state,
                    "trigger": change.trigger,
                    "ignored": change.ignored,
                },
            )
            if _first_ready(change) and aggregate is not None and aggregate.created_at:
                TIME_TO_READY.observe((now - aggregate.created_at).total_seconds())


def _first_ready(change: Any) -> bool:
    return bool(
        change.kind == "cluster"
        and not change.ignored
        and change.to_state == READY
        and str(change.from_state).startswith(("accepted", "provisioning_"))
    )
